"""Measure end-of-turn detection on held-out Mandarin telephone clips (complete vs cut off).

    python scripts/eval_turn.py                       # tests/voice/turn_clips
    python scripts/eval_turn.py --clips DIR --json out.json

Each clip (8 kHz, after a μ-law round trip) is heard as the pipeline hears it: the speech and
the first ``speculate_after_s`` (200 ms) of the pause, upsampled to 16 kHz. Two verdicts are
compared with the truth (did the speaker finish?), per voice: Smart Turn's audio alone, and
what the product uses, the audio *and* the speculative Whisper transcript reading as a
finished sentence (``voice.turns.reads_finished``). Against the silence-only rule they
replace, in seconds of silence before the agent may answer:

* energy endpointing answers after ``min_silence_s`` (0.6 s) of quiet, finished or not;
* learned: 0.2 s when the turn is heard as finished, else the caller gets up to
  ``max_pause_s`` (1.0 s) to go on (the decode made at 0.2 s is reused, so even then the
  final is out sooner than 0.6 s + a decode).

"Saved" is the silence a finished caller no longer waits for; "cut in" is the share of
unfinished callers the agent would answer 0.2 s into a thinking pause (the cost of a false
"finished"); with silence only, any pause over 0.6 s is cut in on.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voice.audio import ASR_RATE, PHONE_RATE, read_wav, resample  # noqa: E402
from voice.smart_turn import SmartTurn  # noqa: E402
from voice.turns import reads_finished  # noqa: E402

CLIPS = ROOT / "tests" / "voice" / "turn_clips"
SPECULATE_S, ENERGY_SILENCE_S, MAX_PAUSE_S = 0.2, 0.6, 1.0


def evaluate(clips_dir: Path = CLIPS, threshold: float = 0.5,
             model: SmartTurn | None = None, recognizer: Any = None) -> dict[str, object]:
    """``recognizer``: a Whisper recogniser for the transcript half (None: audio only)."""
    model = model or SmartTurn()
    manifest = json.loads((clips_dir / "manifest.json").read_text())
    rows, latencies = [], []
    for item in manifest:
        audio, rate = read_wav(clips_dir / item["file"])
        audio = resample(audio, rate, PHONE_RATE) if rate != PHONE_RATE else audio
        heard = np.concatenate([audio, np.zeros(int(SPECULATE_S * PHONE_RATE), np.int16)])
        started = time.perf_counter()
        p = model.probability(resample(heard, PHONE_RATE, ASR_RATE))
        latencies.append((time.perf_counter() - started) * 1000)
        text = recognizer.transcribe(heard)[0] if recognizer is not None else ""
        rows.append({"file": item["file"], "voice": item["voice"], "complete": item["complete"],
                     "p": round(p, 4), "text": text,
                     "audio_finished": p >= threshold,
                     "finished": p >= threshold and (recognizer is None or reads_finished(text))})
    report = summarise(rows, latencies)
    if recognizer is not None:
        audio_only = [{**r, "finished": r["audio_finished"]} for r in rows]
        report["audio_only"] = summarise(audio_only, latencies)["all"]
    return report


def summarise(rows: list[dict], latencies: list[float]) -> dict[str, object]:
    def stats(part: list[dict]) -> dict[str, object]:
        done = [r for r in part if r["complete"]]
        cut = [r for r in part if not r["complete"]]
        right = sum(r["finished"] == r["complete"] for r in part)
        learned_wait = [SPECULATE_S if r["finished"] else MAX_PAUSE_S for r in done]
        return {
            "clips": len(part), "accuracy": round(right / max(len(part), 1), 3),
            "complete_heard_finished": f"{sum(r['finished'] for r in done)}/{len(done)}",
            "cut_off_heard_unfinished": f"{sum(not r['finished'] for r in cut)}/{len(cut)}",
            "silence_before_answer_s": {
                "energy": ENERGY_SILENCE_S,
                "learned_mean": round(statistics.mean(learned_wait), 3) if done else None},
            "silence_saved_s": round(ENERGY_SILENCE_S - statistics.mean(learned_wait), 3)
            if done else None,
            "cut_in_on_thinking_pause": round(sum(r["finished"] for r in cut) / max(len(cut), 1),
                                              3),
        }

    by_voice: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_voice[r["voice"]].append(r)
    latencies.sort()
    return {"all": stats(rows), "per_voice": {v: stats(p) for v, p in sorted(by_voice.items())},
            "latency_ms": {"p50": round(statistics.median(latencies), 1),
                           "p95": round(latencies[int(0.95 * (len(latencies) - 1))], 1)},
            "clips": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=Path, default=CLIPS)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--audio-only", action="store_true",
                        help="Smart Turn alone, without the Whisper transcript")
    args = parser.parse_args()
    recognizer = None
    if not args.audio_only:
        from voice.asr.whisper import WhisperRecognizer

        recognizer = WhisperRecognizer(endpointing="energy")
        recognizer.load()
    report = evaluate(args.clips, args.threshold, recognizer=recognizer)
    if args.json:
        args.json.write_text(json.dumps(report, ensure_ascii=False, indent=1))
    print(json.dumps({k: v for k, v in report.items() if k != "clips"}, ensure_ascii=False,
                     indent=1))


if __name__ == "__main__":
    main()
