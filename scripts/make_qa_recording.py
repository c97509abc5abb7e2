"""Render the dual-channel test call for QA of recordings (tests/voice/clips/qa_threat_call.wav).

Development-time only, in a throw-away virtualenv with ttskit==0.3.8 (see
tests/voice/clips/PROVENANCE.md); ttskit is not a dependency of the product.

    /tmp/ttsenv/bin/python scripts/make_qa_recording.py tests/voice/clips/qa_threat_call.wav

Left channel: a human collector (institution and recording notice, then a threat); right
channel: the borrower. 8 kHz 16-bit stereo, as diallers store calls.
"""

from __future__ import annotations

import io
import sys
import wave

import numpy as np

LINES = [  # (channel, text)
    ("left", "你好，我是安心借的催收员，本次通话会录音。"),
    ("right", "你好，有什么事？"),
    ("left", "你的借款已经逾期两个月了，今天必须处理。"),
    ("right", "我现在真的没有钱。"),
    ("left", "再不还钱，我们就派人去你家找你，你出门小心点。"),
]
RATE = 8000
GAP_S = 0.7


def _render(text: str) -> np.ndarray:
    from scipy.signal import resample_poly
    from ttskit import sdk_api

    data = sdk_api.tts_sdk(text, audio="24")
    with wave.open(io.BytesIO(data)) as w:
        rate = w.getframerate()
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32)
    return resample_poly(samples, RATE, rate).astype(np.float32)


def main(out: str) -> None:
    pieces = [(channel, _render(text)) for channel, text in LINES]
    total = int(sum(len(p) for _, p in pieces) + (len(pieces) + 1) * GAP_S * RATE)
    stereo = np.zeros((total, 2), dtype=np.float32)
    at = int(GAP_S * RATE)
    for channel, samples in pieces:
        stereo[at:at + len(samples), 0 if channel == "left" else 1] = samples
        at += len(samples) + int(GAP_S * RATE)
    pcm = np.clip(stereo, -32768, 32767).astype(np.int16)
    with wave.open(out, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())


if __name__ == "__main__":
    main(sys.argv[1])
