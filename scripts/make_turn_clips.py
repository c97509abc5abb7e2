"""Render the held-out end-of-turn test set in tests/voice/turn_clips/ (reproducibly).

Forty short things a borrower says to a collection agent, each rendered in two synthetic
Mandarin voices, as telephone audio, in pairs: the COMPLETE utterance and a CUT-OFF copy that
stops mid-sentence (cut at the quietest 20 ms frame between 35 % and 75 % of the speech, then
100 ms of silence), so an end-of-turn detector can be scored on "finished" vs "still thinking".

Voices come from ``ttskit==0.3.8`` (multi-speaker Mellotron + MelGAN, ~59 MB, training data
unknown; see ../shared/models/README.md, "A second synthetic Mandarin voice"). It needs torch,
so it lives in a THROW-AWAY virtualenv, never in the project's ``.venv``::

    python3.11 -m venv /tmp/ttskit-venv
    /tmp/ttskit-venv/bin/pip install torch==2.13.0          # the +cpu build is enough
    /tmp/ttskit-venv/bin/pip install --no-deps ttskit==0.3.8
    /tmp/ttskit-venv/bin/pip install aukit phkit librosa pydub scikit-learn scipy \\
        setproctitle tqdm unidecode webrtcvad-wheels flask pyyaml
    # the three small source edits (librosa >= 0.10 keywords, torch.load(weights_only=False)):
    .venv/bin/python scripts/make_turn_clips.py --patch-ttskit
    .venv/bin/python scripts/make_turn_clips.py            # renders and writes the clips

``--patch-ttskit`` edits the installed ttskit in place (idempotent). ``weights_only=False``
unpickles whole model objects, i.e. runs code from the pickle: acceptable only for the model
files shipped inside the ttskit wheel itself; never point it at untrusted files.

Default voices: ttskit speakers ``Aicheng`` (male, median F0 ~145 Hz) and ``Aiyue`` (female,
~215 Hz). Fallback without ttskit: ``--voices espeak:cmn-latn-pinyin,espeak:cmn:p70:s150``
(Debian espeak-ng; ``espeak:VOICE[:pPITCH][:sSPEED]``; pinyin with tone numbers from
pypinyin). Any mix of ``ttskit:SPEAKER`` and ``espeak:...`` is accepted.

Per text and voice: render → 8 kHz mono → peak -6 dBFS → G.711 μ-law round trip (the
project's own tables in voice/audio.py) → leading/trailing silence trimmed to 100 ms → write
``<id>_<voice>_complete.wav``; then the cut: 20 ms RMS frames (5 ms hop) over the speech span
(first to last frame within 35 dB of the loudest), the quietest frame whose centre lies
between 35 % and 75 % of that span and not in or near a clause pause (≥ 100 ms of
near-digital silence, e.g. at a comma; excluded from 300 ms before it to 150 ms after it,
since a prefix ending there is a complete clause with sentence-final prosody), audio kept up to that centre (5 ms fade), 100 ms of
digital silence appended → ``<id>_<voice>_cut.wav``. If that quietest frame is not "low
energy" (more than 30 dB below the loudest frame) the cut is made there anyway and
``cut_low_energy: false`` is recorded. ttskit renders are seeded (torch.manual_seed per clip)
and re-tried with another seed when the duration per character is implausible (a Tacotron
stop-gate failure), so a rerun on the same machine gives the same audio.

Output: 8 kHz mono 16-bit PCM WAVs plus ``manifest.json`` (list of {file, text, voice,
complete, duration_s, cut_at_s, pair, ...}). Test fixtures only; see PROVENANCE.md there.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voice.audio import (  # noqa: E402
    PHONE_RATE,
    array_to_mulaw,
    mulaw_to_array,
    read_wav,
    resample,
    write_wav,
)

OUT = ROOT / "tests" / "voice" / "turn_clips"
DEFAULT_VOICES = "ttskit:Aicheng,ttskit:Aiyue"
MAX_TOTAL_BYTES = 6 * 1024 * 1024

# (id, text): what a borrower might say on a collection call; 4-25 characters.
TEXTS: list[tuple[str, str]] = [
    ("t01", "你们是哪个平台的"),
    ("t02", "我已经还过了，你们查一下"),
    ("t03", "我下周三发了工资就还两千"),
    ("t04", "这个月实在是周转不开，能不能分期还"),
    ("t05", "我现在在开车，晚点再说"),
    ("t06", "好的，我知道了"),
    ("t07", "这笔钱不是我借的"),
    ("t08", "你们怎么有我的电话号码"),
    ("t09", "我最多先还五百块"),
    ("t10", "能不能把利息减免一点"),
    ("t11", "我妈住院了，手头真的很紧"),
    ("t12", "你说的那个金额不对吧"),
    ("t13", "我这两天就去银行转账"),
    ("t14", "可以，月底之前一定还清"),
    ("t15", "我要投诉你们，天天打电话"),
    ("t16", "我不认识这个人"),
    ("t17", "我现在没工作，等找到工作再还"),
    ("t18", "你把还款账号发给我"),
    ("t19", "我想问一下逾期会不会影响征信"),
    ("t20", "上个月不是已经协商过了吗"),
    ("t21", "没问题，我会还的"),
    ("t22", "我在上班，不方便接电话"),
    ("t23", "我可以先还一部分，剩下的等下个月发工资再还"),
    ("t24", "你们的利息太高了，我不认"),
    ("t25", "我老公在处理这个事，你找他吧"),
    ("t26", "三千块我真的拿不出来"),
    ("t27", "能不能宽限我半个月"),
    ("t28", "我昨天晚上已经用支付宝还了"),
    ("t29", "你们别再给我家里人打电话了"),
    ("t30", "我再想想"),
    ("t31", "请问我现在一共欠多少钱"),
    ("t32", "我明天上午十点之前转过去"),
    ("t33", "那个借款合同我没见过"),
    ("t34", "我的卡被冻结了，暂时转不了账"),
    ("t35", "可以先停一下罚息吗"),
    ("t36", "我记得是十五号到期的"),
    ("t37", "好，我今天下午就还"),
    ("t38", "你们是正规公司吗，有没有营业执照"),
    ("t39", "我朋友借钱时填了我的号码，跟我没关系"),
    ("t40", "对不起，这几天生意不好，再给我一点时间"),
]

# Runs inside the ttskit venv. argv[1]: JSON list of [text, speaker, seed, out_path].
_TTSKIT_PROGRAM = r"""
import io, json, logging, sys, wave
import numpy as np
import torch
logging.disable(logging.INFO)
from ttskit import sdk_api

def speech_seconds(data):
    with wave.open(io.BytesIO(data)) as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float64)
    hop = rate // 100
    n = len(x) // hop
    lv = 20 * np.log10(np.sqrt(np.mean(x[:n * hop].reshape(n, hop) ** 2, axis=1)) + 1e-9)
    on = np.nonzero(lv > lv.max() - 35)[0]
    return (on[-1] - on[0] + 1) / 100 if len(on) else 0.0

report = []
for text, speaker, seed, path in json.loads(sys.argv[1]):
    chars = sum(ch.isalnum() for ch in text)
    for attempt in range(6):
        torch.manual_seed(seed + 1000 * attempt)
        np.random.seed(seed + 1000 * attempt)
        data = sdk_api.tts_sdk(text, speaker=speaker, audio="24")
        per_char = speech_seconds(data) / chars
        if 0.13 <= per_char <= 0.42:
            break
    open(path, "wb").write(data)
    report.append({"path": path, "attempts": attempt + 1, "per_char_s": round(per_char, 3),
                   "seed": seed + 1000 * attempt})
print(json.dumps(report))
"""

# Runs inside the ttskit venv: the three edits of ../shared/models/README.md, idempotent.
_PATCH_PROGRAM = r"""
import re
from pathlib import Path
import importlib.util
root = Path(importlib.util.find_spec("ttskit").origin).parent
changed = []
for p in sorted(root.rglob("*.py")):
    s = o = p.read_text(encoding="utf8")
    s = re.sub(r"pad_center\((\w+), (\w+)\)", r"pad_center(\1, size=\2)", s)
    s = s.replace(
        "librosa_mel_fn(\n            sampling_rate, filter_length, n_mel_channels, mel_fmin, mel_fmax)",
        "librosa_mel_fn(\n            sr=sampling_rate, n_fft=filter_length, n_mels=n_mel_channels,"
        " fmin=mel_fmin, fmax=mel_fmax)")
    s = re.sub(r"torch\.load\(([^()]*?)\)",
               lambda m: m.group(0) if "weights_only" in m.group(1)
               else "torch.load(" + m.group(1) + ", weights_only=False)", s)
    if s != o:
        p.write_text(s, encoding="utf8")
        changed.append(str(p.relative_to(root)))
print("patched:", ", ".join(changed) if changed else "nothing (already patched)")
"""


# ----------------------------------------------------------------------------- rendering


def _seed(tid: str, voice: str) -> int:
    return int(tid[1:]) * 97 + sum(map(ord, voice))


def render_ttskit(python: str, jobs: list[tuple[str, str, str, Path]]) -> list[dict]:
    """jobs: (tid, text, speaker, raw_path). Returns the per-clip render report."""
    payload = [[text, speaker, _seed(tid, speaker), str(raw)] for tid, text, speaker, raw in jobs]
    res = subprocess.run([python, "-c", _TTSKIT_PROGRAM, json.dumps(payload)], check=True,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def render_espeak(text: str, spec: str, raw: Path) -> None:
    """spec: VOICE[:pPITCH][:sSPEED], e.g. cmn-latn-pinyin or cmn:p70:s150."""
    voice, *opts = spec.split(":")
    args = ["espeak-ng", "-v", voice]
    for o in opts:
        args += [f"-{o[0]}", o[1:]]
    if voice.startswith("cmn"):
        from pypinyin import Style, lazy_pinyin

        if voice == "cmn-latn-pinyin":
            text = " ".join(lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True))
    subprocess.run(args + ["-w", str(raw), text], check=True)


# ----------------------------------------------------------------------------- processing

FRAME = PHONE_RATE * 20 // 1000  # 20 ms RMS window
HOP = PHONE_RATE * 5 // 1000  # 5 ms hop
MARGIN = PHONE_RATE * 100 // 1000  # 100 ms
FADE = PHONE_RATE * 5 // 1000


def frame_db(x: np.ndarray) -> np.ndarray:
    """dBFS of 20 ms windows every 5 ms; window i covers [i*HOP, i*HOP+FRAME)."""
    xf = x.astype(np.float64) / 32768.0
    n = max(0, (len(xf) - FRAME) // HOP + 1)
    idx = np.arange(FRAME)[None, :] + HOP * np.arange(n)[:, None]
    return 10 * np.log10(np.mean(xf[idx] ** 2, axis=1) + 1e-12)


def speech_span(x: np.ndarray) -> tuple[int, int]:
    """First and last sample of frames within 35 dB of the loudest frame (and above -55 dBFS)."""
    lv = frame_db(x)
    on = np.nonzero((lv > lv.max() - 35) & (lv > -55))[0]
    if not len(on):
        raise ValueError("silent clip")
    return int(on[0] * HOP), int(on[-1] * HOP + FRAME)


def to_phone(raw: Path) -> np.ndarray:
    x, rate = read_wav(raw)
    y = resample(x, rate, PHONE_RATE).astype(np.float64)
    peak = np.abs(y).max()
    y = y * (0.5 * 32767 / peak) if peak > 0 else y
    y = np.clip(np.round(y), -32768, 32767).astype(np.int16)
    return mulaw_to_array(array_to_mulaw(y)).astype(np.int16)  # G.711 μ-law round trip


def trim(y: np.ndarray) -> np.ndarray:
    a, b = speech_span(y)
    out = y[max(0, a - MARGIN):min(len(y), b + MARGIN)]
    lead = MARGIN - (a - max(0, a - MARGIN))
    tail = MARGIN - (min(len(y), b + MARGIN) - b)
    return np.concatenate([np.zeros(lead, np.int16), out, np.zeros(tail, np.int16)])


def cut(y: np.ndarray) -> tuple[np.ndarray, float, bool, float]:
    """(cut clip, cut time in s, whether the cut frame is low-energy, its level re loudest)."""
    a, b = speech_span(y)
    lv = frame_db(y)
    centres = np.arange(len(lv)) * HOP + FRAME // 2
    lo, hi = a + 0.35 * (b - a), a + 0.75 * (b - a)
    ok = (centres >= lo) & (centres <= hi)
    # Not in or near a clause pause (300 ms before it, 150 ms after): ttskit renders each comma-separated
    # clause separately with sentence-final prosody and 300 ms of silence between them, so a
    # cut there (or inside the clause's last syllable) would leave a complete-sounding, often
    # complete, clause rather than a cut-off one; 150 ms after it leaves a syllable or so of the
    # next clause.
    gap = lv < lv.max() - 60
    runs = np.diff(np.concatenate([[0], gap.astype(np.int8), [0]]))
    near = np.zeros(len(lv), bool)
    for s0, s1 in zip(np.nonzero(runs == 1)[0], np.nonzero(runs == -1)[0], strict=True):
        if (s1 - s0) * HOP >= PHONE_RATE // 10:  # a pause of 100 ms or more
            near[max(0, s0 - 60):s1 + 30] = True  # 300 ms before, 150 ms after
    cand = np.nonzero(ok & ~near)[0]
    if not len(cand):
        cand = np.nonzero(ok)[0]
    best = cand[np.argmin(lv[cand])]
    # among equally quiet frames (a pause), cut at the middle of that quiet run
    quiet = set(cand[lv[cand] <= lv[best] + 1.0].tolist())
    first = last = int(best)
    while first - 1 in quiet:
        first -= 1
    while last + 1 in quiet:
        last += 1
    at_frame = (first + last) // 2
    at = int(centres[at_frame])
    rel = float(lv[at_frame] - lv.max())
    kept = y[:at].astype(np.float64)
    kept[-FADE:] *= np.linspace(1.0, 0.0, FADE)
    out = np.concatenate([np.round(kept).astype(np.int16), np.zeros(MARGIN, np.int16)])
    return out, at / PHONE_RATE, rel <= -30.0, rel


def voice_name(spec: str) -> str:
    engine, rest = spec.split(":", 1)
    return (engine + "-" + rest.replace(":", "-")).lower()


# ----------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ttskit-python", default="/tmp/ttskit-venv/bin/python")
    ap.add_argument("--voices", default=DEFAULT_VOICES,
                    help="comma-separated ttskit:SPEAKER / espeak:VOICE[:pN][:sN]")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--patch-ttskit", action="store_true",
                    help="apply the three compatibility edits to the ttskit venv and exit")
    args = ap.parse_args()
    if args.patch_ttskit:
        subprocess.run([args.ttskit_python, "-c", _PATCH_PROGRAM], check=True)
        return 0
    voices = [v.strip() for v in args.voices.split(",") if v.strip()]
    if any(v.startswith("espeak:") for v in voices) and not shutil.which("espeak-ng"):
        sys.exit("espeak-ng is needed for espeak voices (apt-get install -y espeak-ng)")
    for tid, text in TEXTS:
        n = len(text)
        assert 4 <= n <= 25, (tid, text, n)
    args.out.mkdir(parents=True, exist_ok=True)
    for old in args.out.glob("*.wav"):
        old.unlink()

    entries: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        raws: dict[tuple[str, str], Path] = {}
        render_info: dict[str, dict] = {}
        tts_jobs = []
        for spec in voices:
            engine, rest = spec.split(":", 1)
            for tid, text in TEXTS:
                raw = work / f"{tid}_{voice_name(spec)}.wav"
                raws[(tid, spec)] = raw
                if engine == "ttskit":
                    tts_jobs.append((tid, text, rest, raw))
                elif engine == "espeak":
                    render_espeak(text, rest, raw)
                else:
                    sys.exit(f"unknown voice engine in {spec!r}")
        if tts_jobs:
            for r in render_ttskit(args.ttskit_python, tts_jobs):
                render_info[r["path"]] = r
        for spec in voices:
            vname = voice_name(spec)
            for tid, text in TEXTS:
                raw = raws[(tid, spec)]
                full = trim(to_phone(raw))
                clipped, at_s, low, rel = cut(full)
                base = f"{tid}_{vname}"
                write_wav(args.out / f"{base}_complete.wav", full, PHONE_RATE)
                write_wav(args.out / f"{base}_cut.wav", clipped, PHONE_RATE)
                info = render_info.get(str(raw), {})
                common = {"text": text, "voice": vname, "pair": base}
                if "seed" in info:
                    common["seed"] = info["seed"]
                entries.append({"file": f"{base}_complete.wav", **common, "complete": True,
                                "duration_s": round(len(full) / PHONE_RATE, 3),
                                "cut_at_s": None})
                entries.append({"file": f"{base}_cut.wav", **common, "complete": False,
                                "duration_s": round(len(clipped) / PHONE_RATE, 3),
                                "cut_at_s": round(at_s, 3), "cut_low_energy": low,
                                "cut_level_db_re_peak": round(rel, 1)})
                if info.get("attempts", 1) > 1:
                    print(f"{base}: ttskit needed {info['attempts']} attempts", file=sys.stderr)
    (args.out / "manifest.json").write_text(
        json.dumps(entries, ensure_ascii=False, indent=1) + "\n", encoding="utf8")
    total = sum(p.stat().st_size for p in args.out.glob("*.wav"))
    weak = [e["file"] for e in entries if e.get("cut_low_energy") is False]
    print(f"wrote {len(entries)} clips ({total / 1e6:.2f} MB) to {args.out}")
    if weak:
        print(f"{len(weak)} cuts not at a low-energy frame: {', '.join(weak)}")
    if total > MAX_TOTAL_BYTES:
        print(f"WARNING: total {total} bytes exceeds {MAX_TOTAL_BYTES}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
