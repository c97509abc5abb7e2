"""Learned end of turn from the audio: Smart Turn v3.2 (pipecat, BSD-2), through onnxruntime.

Silence alone cannot tell "我明天……" (thinking) from "我明天还。" (done): people pause
mid-sentence for longer than they pause between turns. Smart Turn hears the last up to 8 s of
the caller's speech (intonation, lengthening, the cut-off syllable) and gives the probability
that the caller has finished, in ~100 ms on one CPU thread, for 23 languages including Chinese.

We load the ONNX file and pipecat's numpy Whisper feature extractor from the installed
``pipecat-ai`` wheel by path, without importing ``pipecat`` itself: its package imports pull
in loguru, aiohttp, openai, numba… for two files we need. (``scripts/install.sh`` installs the
wheel with ``--no-deps`` for the same reason.) ``HUIKUAN_TURN_MODEL`` points elsewhere.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

MODEL_RATE = 16000
WINDOW_S = 8
_SMART_TURN_DIR = ("audio", "turn", "smart_turn")
MODEL_FILE = "smart-turn-v3.2-cpu.onnx"


class TurnModelError(RuntimeError):
    """The end-of-turn model is missing or unusable (raised at start-up, not mid-call)."""


def _pipecat_dir() -> Path:
    spec = importlib.util.find_spec("pipecat")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise TurnModelError(
            "Smart Turn needs the pipecat-ai wheel: pip install --no-deps pipecat-ai==1.14.0 "
            "(scripts/install.sh does), or set HUIKUAN_TURN_MODEL to the ONNX file")
    return Path(next(iter(spec.submodule_search_locations))).joinpath(*_SMART_TURN_DIR)


def packaged_model_path() -> Path:
    path = _pipecat_dir() / "data" / MODEL_FILE
    if not path.is_file():
        raise TurnModelError(f"Smart Turn model not found at {path}")
    return path


def _feature_extractor() -> Callable[..., np.ndarray]:
    path = _pipecat_dir() / "_whisper_features.py"
    spec = importlib.util.spec_from_file_location("_huikuan_smart_turn_features", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise TurnModelError(f"Smart Turn feature extractor not found at {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # numpy only
    return module.compute_whisper_log_mel_features


class SmartTurn:
    """``probability(audio)``: has the speaker finished? One shared instance per process."""

    def __init__(self, model_path: str | Path | None = None, threads: int = 1) -> None:
        import onnxruntime

        path = Path(model_path) if model_path else packaged_model_path()
        opts = onnxruntime.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = threads
        opts.log_severity_level = 4
        try:
            self._session = onnxruntime.InferenceSession(
                str(path), providers=["CPUExecutionProvider"], sess_options=opts)
        except Exception as exc:
            raise TurnModelError(f"onnxruntime could not load {path}: {exc}") from exc
        self._features = _feature_extractor()

    def probability(self, audio_16k: np.ndarray) -> float:
        """``audio_16k``: the turn so far, float in [-1, 1] or int16, 16 kHz mono."""
        x = np.asarray(audio_16k)
        x = x.astype(np.float32) / 32768.0 if x.dtype == np.int16 else x.astype(np.float32)
        n = WINDOW_S * MODEL_RATE
        x = x[-n:] if len(x) >= n else np.pad(x, (n - len(x), 0))  # the end matters: keep it
        features = self._features(x, do_normalize=True)[None, :, :]
        out = self._session.run(None, {"input_features": features.astype(np.float32)})
        return float(np.asarray(out[0]).reshape(-1)[0])


_SHARED: dict[str, SmartTurn] = {}
_SHARED_LOCK = threading.Lock()


def shared_smart_turn(model_path: str | Path | None = None) -> SmartTurn:
    key = str(model_path or "")
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = SmartTurn(model_path)
        return _SHARED[key]


def available() -> bool:
    try:
        packaged_model_path()
    except TurnModelError:
        return False
    return True


