"""Vosk (Kaldi) streaming recogniser: partials while the caller speaks, finals at endpoints.

The model directory comes from ``HUIKUAN_ASR_MODEL`` (users download the official Mandarin
``vosk-model-small-cn-0.22`` with ``scripts/fetch_models.py``). Models are cached per path so
one process loads each model once however many calls it serves. Kaldi's endpointing rules
come from the model's ``conf/model.conf`` (``--endpoint.rule*``).
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np

from voice.asr.base import AsrError, RecognizerStream, SpeechRecognizer, TranscriptEvent
from voice.audio import ASR_RATE, PHONE_RATE, Resampler, pcm16_to_array, to_int16

_MODELS: dict[str, Any] = {}
_MODELS_LOCK = threading.Lock()
_CJK_GAP = re.compile(r"(?<=[\u3400-\u9fff])\s+(?=[\u3400-\u9fff])")


def _join_text(text: str) -> str:
    """Vosk's Chinese models put spaces between words; Chinese text has none."""
    return _CJK_GAP.sub("", text.strip())


def _check_model_dir(path: Path) -> None:
    if not path.is_dir():
        raise AsrError(
            f"Vosk model directory {path} does not exist; download one (for Mandarin run "
            "`python scripts/fetch_models.py vosk`) and set HUIKUAN_ASR_MODEL to it")
    if not ((path / "am" / "final.mdl").exists() or (path / "final.mdl").exists()):
        raise AsrError(f"{path} is not a Vosk model directory (no am/final.mdl)")


def load_vosk_model(path: str | Path) -> Any:
    """Load (or reuse) the Vosk model at ``path``."""
    p = Path(path).expanduser().resolve()
    key = str(p)
    with _MODELS_LOCK:
        if key in _MODELS:
            return _MODELS[key]
        _check_model_dir(p)
        try:
            import vosk
        except ImportError as exc:  # pragma: no cover - dependency of the project
            raise AsrError("the `vosk` package is not installed") from exc
        vosk.SetLogLevel(-1)
        try:
            model = vosk.Model(key)
        except Exception as exc:  # vosk raises a bare Exception on a broken model
            raise AsrError(f"Vosk could not load the model at {p}: {exc}") from exc
        _MODELS[key] = model
        return model


class VoskStream(RecognizerStream):
    def __init__(self, rec: Any, sample_rate: int, partials: bool,
                 partial_interval_s: float = 0.1, release: Any = None) -> None:
        self._rec = rec
        self._release = release
        self._rate = sample_rate
        self._resampler = Resampler(PHONE_RATE, sample_rate)
        self._partials = partials
        self._last_partial = ""
        self._samples = 0  # at the recogniser's rate
        self._utt_start = 0.0
        self._partial_at = 0
        self._partial_every = int(partial_interval_s * sample_rate)

    def _final(self, raw: str) -> list[TranscriptEvent]:
        self._last_partial = ""
        data = json.loads(raw or "{}")
        text = _join_text(data.get("text", ""))
        now = self._samples / self._rate
        start, self._utt_start = self._utt_start, now
        if not text:
            return []
        words = data.get("result") or []
        if words:
            conf = float(np.mean([w.get("conf", 1.0) for w in words]))
            start, end = float(words[0]["start"]), float(words[-1]["end"])
        else:
            conf, end = 1.0, now
        return [TranscriptEvent(text, True, conf, start, end)]

    def accept(self, pcm16_8k: bytes) -> list[TranscriptEvent]:
        if not pcm16_8k:
            return []
        x = pcm16_to_array(pcm16_8k)
        if self._rate != PHONE_RATE:
            x = to_int16(np.round(self._resampler.process(x)).astype(np.int32))
        self._samples += len(x)
        if self._rec.AcceptWaveform(x.astype("<i2").tobytes()):
            return self._final(self._rec.Result())
        if not self._partials or self._samples - self._partial_at < self._partial_every:
            return []
        self._partial_at = self._samples  # partial extraction costs a traceback: throttle it
        text = _join_text(json.loads(self._rec.PartialResult()).get("partial", ""))
        if not text or text == self._last_partial:
            return []
        self._last_partial = text
        now = self._samples / self._rate
        return [TranscriptEvent(text, False, 0.0, self._utt_start, now)]

    def flush(self) -> list[TranscriptEvent]:
        return self._final(self._rec.FinalResult())

    def close(self) -> None:
        rec, self._rec = self._rec, None
        if rec is not None and self._release is not None:
            self._release(rec)


class VoskRecognizer(SpeechRecognizer):
    """``VoskRecognizer(model_path)``; audio is upsampled 8 → 16 kHz (``sample_rate``)."""

    name = "vosk"

    def __init__(self, model_path: str | Path, sample_rate: int = ASR_RATE,
                 partials: bool = True, partial_interval_s: float = 0.1) -> None:
        self.model_path = Path(model_path)
        self.partial_interval_s = partial_interval_s
        self.sample_rate = sample_rate
        self.partials = partials
        self._model: Any = None
        # Finished calls' recognisers, reset and reused: a fresh KaldiRecognizer spends seconds
        # of CPU warming up over its first audio (measured by scripts/bench_voice.py).
        self._idle: list[Any] = []
        self._idle_lock = threading.Lock()
        self.max_idle = 64

    def load(self) -> None:
        if self._model is None:
            self._model = load_vosk_model(self.model_path)

    def _acquire(self) -> Any:
        with self._idle_lock:
            if self._idle:
                return self._idle.pop()
        import vosk

        rec = vosk.KaldiRecognizer(self._model, self.sample_rate)
        rec.SetWords(True)
        return rec

    def _release(self, rec: Any) -> None:
        rec.Reset()
        with self._idle_lock:
            if len(self._idle) < self.max_idle:
                self._idle.append(rec)

    def open_stream(self) -> VoskStream:
        self.load()
        return VoskStream(self._acquire(), self.sample_rate, self.partials,
                          self.partial_interval_s, release=self._release)
