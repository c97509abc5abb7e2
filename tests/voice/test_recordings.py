"""Call recordings → per-channel, time-ordered transcripts (real Whisper, real decoding)."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np
import pytest

from voice.asr import whisper as W
from voice.recordings import RecordingError, decode, transcribe_recording

CALL = Path(__file__).parent / "clips" / "qa_threat_call.wav"


@pytest.fixture(scope="module")
def whisper(tmp_path_factory: pytest.TempPathFactory) -> W.WhisperRecognizer:
    rec = W.WhisperRecognizer(W.assemble_whisper_base(tmp_path_factory.mktemp("d") / "wb"))
    rec.load()
    return rec


def _mono_wav(samples: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(samples.astype(np.int16).tobytes())
    return buffer.getvalue()


def test_stereo_and_mono_are_told_apart_and_garbage_is_named() -> None:
    left, right = decode(CALL)
    assert right is not None and len(left) == len(right) > 8000 * 10
    mono, none = decode(io.BytesIO(_mono_wav(left)))
    assert none is None and len(mono) == len(left)
    with pytest.raises(RecordingError, match="decode"):
        decode(io.BytesIO(b"this is not audio at all" * 50))


def test_each_channel_is_one_speaker_in_time_order(whisper: W.WhisperRecognizer) -> None:
    transcript = transcribe_recording(CALL, whisper, agent_channel="left")
    speakers = [u.speaker for u in transcript.utterances]
    assert transcript.speakers_separated
    assert speakers == ["agent", "borrower", "agent", "borrower", "agent"]
    starts = [u.start_s for u in transcript.utterances]
    assert starts == sorted(starts)
    assert "派人" in transcript.utterances[-1].text
    flipped = transcribe_recording(CALL, whisper, agent_channel="right")
    assert [u.speaker for u in flipped.utterances][:2] == ["borrower", "agent"]
