"""QA of conversations held elsewhere: transcript files and call recordings → scorecards.

One path for ``huikuan qa FILE…`` and ``POST /api/v1/qa/recordings``: a recording is
recognised per channel (``voice.recordings``), a transcript file is read as the
``/qa/transcripts`` body; both are scored by ``agent.policy.qa`` with the same gate as every
agent line. Lines in a report are masked: a QA report travels further than the call did.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

from agent.policy.content import LearnedClassifier
from agent.policy.profile import Profile
from agent.policy.qa import QaContext, Scorecard, TranscriptTurn, score_transcript
from nlp.masking import mask_sensitive
from voice.asr.base import SpeechRecognizer
from voice.recordings import RecordingError, transcribe_recording

AUDIO_SUFFIXES = (".wav", ".mp3", ".m4a", ".ogg", ".flac", ".amr", ".aac")


class QaInputError(ValueError):
    """A file QA cannot read: names the file and the problem."""


@dataclass(frozen=True)
class QaSetup:
    profile: Profile
    context: QaContext
    classifier: LearnedClassifier | None = None
    agent_channel: Literal["left", "right"] = "left"


def _report(card: Scorecard, turns: list[TranscriptTurn], **extra: Any) -> dict[str, Any]:
    return {**card.to_dict(),
            "turns": [{"speaker": t.speaker, "text": mask_sensitive(t.text)} for t in turns],
            **extra}


def score_recording(source: str | Path | BinaryIO, recognizer: SpeechRecognizer,
                    setup: QaSetup) -> dict[str, Any]:
    try:
        transcript = transcribe_recording(source, recognizer, setup.agent_channel)
    except RecordingError as exc:
        raise QaInputError(str(exc)) from exc
    turns = [TranscriptTurn(u.speaker, u.text) for u in transcript.utterances]
    card = score_transcript(turns, setup.profile, setup.context, setup.classifier)
    report = _report(card, turns, duration_s=round(transcript.duration_s, 2),
                     speakers_separated=transcript.speakers_separated)
    for turn, utterance in zip(report["turns"], transcript.utterances, strict=True):
        turn["start_s"], turn["end_s"] = round(utterance.start_s, 2), round(utterance.end_s, 2)
    return report


def read_transcript(path: Path) -> list[TranscriptTurn]:
    """A ``/qa/transcripts`` body (``{"turns": [{"speaker", "text"}…]}``) or a bare list."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise QaInputError(f"{path.name}: not a JSON transcript ({exc})") from exc
    rows = data.get("turns") if isinstance(data, dict) else data
    if not isinstance(rows, list) or not rows:
        raise QaInputError(f"{path.name}: expected {{\"turns\": [{{\"speaker\", \"text\"}}, …]}}")
    turns = []
    for number, row in enumerate(rows, 1):
        if not isinstance(row, dict) or row.get("speaker") not in ("agent", "borrower") \
                or not isinstance(row.get("text"), str):
            raise QaInputError(f"{path.name}: turn {number} needs speaker agent|borrower and text")
        turns.append(TranscriptTurn(row["speaker"], row["text"]))
    return turns


def score_file(path: Path, setup: QaSetup, recognizer: SpeechRecognizer | None) -> dict[str, Any]:
    if path.suffix.lower() in AUDIO_SUFFIXES:
        if recognizer is None:
            raise QaInputError(f"{path.name}: recordings need the speech recogniser")
        return score_recording(path, recognizer, setup)
    if path.suffix.lower() == ".json":
        turns = read_transcript(path)
        return _report(score_transcript(turns, setup.profile, setup.context, setup.classifier),
                       turns)
    raise QaInputError(f"{path.name}: unsupported file type (JSON transcript or "
                       f"{', '.join(AUDIO_SUFFIXES)})")
