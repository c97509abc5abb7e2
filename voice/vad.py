"""Learned voice activity detection: Silero VAD (MIT), the ONNX file faster-whisper ships.

The energy detector (``voice.audio.EnergyVad``) mistakes line noise, breathing and music for
speech and quiet syllables for silence; Silero was trained on thousands of hours of speech in
many languages and noise conditions. It runs through ``onnxruntime`` (already a dependency of
faster-whisper) at ~0.2 ms per 32 ms chunk on one thread, so one instance per call is cheap.

Phone audio is 8 kHz; the model file bundled by faster-whisper is the 16 kHz one (512-sample
chunks plus 64 samples of context), so frames are upsampled with a streaming resampler.
``SileroVad.update`` takes the same 20 ms frames as ``EnergyVad.update`` and reports the same
"start" / "end" changes, plus the running speech probability and silence length the
end-of-turn logic needs.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any

import numpy as np

from voice.audio import ASR_RATE, PHONE_RATE, Resampler

CHUNK_16K = 512  # 32 ms
CONTEXT_16K = 64
CHUNK_S = CHUNK_16K / ASR_RATE


class VadError(RuntimeError):
    """The VAD model is missing or unusable (raised at start-up, not mid-call)."""


def packaged_silero_path() -> Path:
    """The Silero VAD ONNX file inside the installed faster-whisper package."""
    spec = importlib.util.find_spec("faster_whisper")
    if spec is None or not spec.submodule_search_locations:
        raise VadError("faster-whisper (which ships Silero VAD) is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "assets" / "silero_vad_v6.onnx"
    if not path.is_file():
        raise VadError(f"Silero VAD model not found at {path}; set HUIKUAN_VAD_MODEL")
    return path


_SESSIONS: dict[str, Any] = {}
_SESSIONS_LOCK = threading.Lock()


def _session(path: Path) -> Any:
    """One onnxruntime session per model file, shared by every call (sessions are
    thread-safe for ``run``; the recurrent state lives in each ``SileroVad``)."""
    key = str(path.resolve())
    with _SESSIONS_LOCK:
        if key not in _SESSIONS:
            import onnxruntime

            opts = onnxruntime.SessionOptions()
            opts.inter_op_num_threads = 1
            opts.intra_op_num_threads = 1
            opts.log_severity_level = 4
            try:
                _SESSIONS[key] = onnxruntime.InferenceSession(
                    key, providers=["CPUExecutionProvider"], sess_options=opts)
            except Exception as exc:
                raise VadError(f"onnxruntime could not load the VAD model {path}: {exc}") from exc
        return _SESSIONS[key]


class SileroVad:
    """Per-call streaming Silero VAD over 8 kHz 20 ms frames.

    Speech starts after ``start_s`` of chunks above ``threshold`` and ends after ``end_s`` of
    chunks below ``neg_threshold`` (hysteresis, as Silero's own iterator does).
    """

    def __init__(self, model_path: str | Path | None = None, *, threshold: float = 0.5,
                 neg_threshold: float = 0.35, start_s: float = 0.064,
                 end_s: float = 0.6) -> None:
        self._session = _session(Path(model_path) if model_path else packaged_silero_path())
        self.threshold = threshold
        self.neg_threshold = neg_threshold
        self.start_chunks = max(1, round(start_s / CHUNK_S))
        self.end_chunks = max(1, round(end_s / CHUNK_S))
        self.in_speech = False
        self.probability = 0.0
        self.silence_s = 0.0  # length of the current run of non-speech chunks
        self._run = 0
        self._resampler = Resampler(PHONE_RATE, ASR_RATE)
        self._buf = np.zeros(0, dtype=np.float32)
        self._context = np.zeros(CONTEXT_16K, dtype=np.float32)
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)

    def update(self, frame: np.ndarray | bytes) -> str | None:
        """Feed one 8 kHz int16 frame (any length); returns "start", "end" or None."""
        samples = np.frombuffer(frame, dtype="<i2") if isinstance(frame, bytes) else frame
        up = self._resampler.process(samples) / 32768.0
        self._buf = np.concatenate([self._buf, up.astype(np.float32)])
        change = None
        while len(self._buf) >= CHUNK_16K:
            chunk, self._buf = self._buf[:CHUNK_16K], self._buf[CHUNK_16K:]
            change = self._chunk(chunk) or change
        return change

    def _chunk(self, chunk: np.ndarray) -> str | None:
        x = np.concatenate([self._context, chunk])[None, :]
        self._context = chunk[-CONTEXT_16K:]
        out, self._h, self._c = self._session.run(None, {"input": x, "h": self._h, "c": self._c})
        p = self.probability = float(np.asarray(out).reshape(-1)[0])
        if p >= self.threshold:
            self.silence_s = 0.0
        elif p < self.neg_threshold or not self.in_speech:
            self.silence_s += CHUNK_S
        if not self.in_speech:
            self._run = self._run + 1 if p >= self.threshold else 0
            if self._run >= self.start_chunks:
                self.in_speech, self._run = True, 0
                return "start"
            return None
        self._run = self._run + 1 if p < self.neg_threshold else 0
        if self._run >= self.end_chunks:
            self.in_speech, self._run = False, 0
            return "end"
        return None
