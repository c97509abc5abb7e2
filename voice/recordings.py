"""Call recordings → time-ordered transcripts, for quality assurance (质检) of any call.

Lenders keep dual-channel recordings (one party per channel) from their diallers and from
human collectors; each channel is recognised on its own, so who said what comes from the
channel, never from guessing. A mono recording cannot be separated: every utterance is
checked as collector speech and the report says so. Decoding goes through PyAV (already
installed with faster-whisper): WAV, MP3, M4A, OGG, FLAC.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np

from voice.asr.base import SpeechRecognizer

RATE = 8000  # the recogniser's telephone input rate
CHUNK_S = 0.5
Speaker = Literal["agent", "borrower"]


class RecordingError(ValueError):
    """The file is not audio we can decode, or holds no sound."""


@dataclass(frozen=True)
class RecordedUtterance:
    speaker: Speaker
    text: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class RecordingTranscript:
    utterances: list[RecordedUtterance]
    duration_s: float
    speakers_separated: bool  # False for mono: every line was treated as the collector's


def decode(source: str | Path | BinaryIO) -> tuple[np.ndarray, np.ndarray | None]:
    """(first channel, second channel or None for mono) as 8 kHz int16."""
    from faster_whisper.audio import decode_audio

    try:
        left, right = decode_audio(source, sampling_rate=RATE, split_stereo=True)
    except Exception as exc:  # PyAV raises many types for a bad container
        raise RecordingError(f"cannot decode the recording: {exc}") from exc
    if left.size == 0:
        raise RecordingError("the recording holds no audio")
    to16 = lambda x: (np.clip(x, -1.0, 1.0) * 32767).astype(np.int16)  # noqa: E731
    if np.array_equal(left, right):  # PyAV upmixes mono to two identical channels
        return to16(left), None
    return to16(left), to16(right)


def _recognise(recognizer: SpeechRecognizer, audio: np.ndarray) -> list[tuple[str, float, float]]:
    stream = recognizer.open_stream()
    events = []
    try:
        step = int(CHUNK_S * RATE)
        for start in range(0, len(audio), step):
            events += stream.accept(audio[start:start + step].tobytes())
        events += stream.flush()
    finally:
        stream.close()
    return [(e.text.strip(), e.start_s, e.end_s) for e in events if e.is_final and e.text.strip()]


def _turns(lines: list[RecordedUtterance], max_gap_s: float = 1.0) -> list[RecordedUtterance]:
    """Consecutive pieces of one speaker a short pause apart are one turn: the recogniser may
    end a piece at a pause mid-sentence (learned end of turn), QA judges what was said."""
    out: list[RecordedUtterance] = []
    for line in lines:
        last = out[-1] if out else None
        if last and last.speaker == line.speaker and line.start_s - last.end_s <= max_gap_s:
            glue = "" if last.text[-1:] in "，。！？,.!?；;" else "，"
            out[-1] = RecordedUtterance(line.speaker, last.text + glue + line.text,
                                        last.start_s, line.end_s)
        else:
            out.append(line)
    return out


def transcribe_recording(source: str | Path | BinaryIO, recognizer: SpeechRecognizer,
                         agent_channel: Literal["left", "right"] = "left"
                         ) -> RecordingTranscript:
    """Recognise each channel; the collector's channel is ``agent_channel``."""
    left, right = decode(source)
    duration = len(left) / RATE
    if right is None:
        lines = [RecordedUtterance("agent", t, s, e) for t, s, e in _recognise(recognizer, left)]
        return RecordingTranscript(_turns(lines), duration, speakers_separated=False)
    agent, borrower = (left, right) if agent_channel == "left" else (right, left)
    lines = [RecordedUtterance("agent", t, s, e) for t, s, e in _recognise(recognizer, agent)]
    lines += [RecordedUtterance("borrower", t, s, e)
              for t, s, e in _recognise(recognizer, borrower)]
    lines.sort(key=lambda u: (u.start_s, u.speaker))
    return RecordingTranscript(_turns(lines), duration, speakers_separated=True)
