"""The speech-recognition interface every engine implements.

A recogniser loads its model once per process; each phone call opens its own stream. Streams
are synchronous (engines are C++ libraries that block); ``AsyncRecognizerStream`` moves the
work onto a bounded thread pool so that a slow decode never stalls the event loop that is
pacing audio for every other call.
"""

from __future__ import annotations

import asyncio
import os
import threading
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass


class AsrError(RuntimeError):
    """Recogniser misconfigured or model unusable (raised at start-up, not mid-call)."""


@dataclass(frozen=True)
class TranscriptEvent:
    """A partial (may still change) or final (settled) hypothesis for one utterance.

    ``start_s``/``end_s`` are seconds of audio since the stream was opened.
    """

    text: str
    is_final: bool
    confidence: float
    start_s: float
    end_s: float


class RecognizerStream(ABC):
    """Per-call decoding state. Not thread-safe: feed it from one task at a time."""

    @abstractmethod
    def accept(self, pcm16_8k: bytes) -> list[TranscriptEvent]:
        """Feed 8 kHz 16-bit mono PCM (any length); returns events produced by it."""

    @abstractmethod
    def flush(self) -> list[TranscriptEvent]:
        """End of audio: finalise whatever is pending."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release engine resources held by this stream."""


class SpeechRecognizer(ABC):
    """Engine facade: ``load()`` once (idempotent), then ``open_stream()`` per call."""

    name: str = "asr"
    # True when a final already means "the caller has finished" (the recogniser decided the
    # end of the turn itself): the turn-taker then need not wait for more silence.
    decides_end_of_turn: bool = False

    @abstractmethod
    def load(self) -> None:
        """Load the model or raise ``AsrError`` with an actionable message."""

    @abstractmethod
    def open_stream(self) -> RecognizerStream:
        """A fresh recogniser for one call (loads the model first if needed)."""


_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def decode_workers() -> int:
    """How many utterances are decoded at once: ``HUIKUAN_ASR_WORKERS``, default the cores.

    The engines release the GIL while decoding, so this many threads keep every core busy;
    more would only split the cores between more decodes."""
    return max(1, int(os.environ.get("HUIKUAN_ASR_WORKERS") or os.cpu_count() or 2))


def asr_executor() -> ThreadPoolExecutor:
    """Process-wide pool that runs each call's stream (VAD, endpointing, and waiting for a
    decode); ``HUIKUAN_ASR_THREADS`` (default 64) bounds the calls served at once.

    It is deliberately larger than the cores: a call whose decode waits for the engine must
    not hold up the per-frame work of the others (that was queueing between calls, with the
    CPU mostly idle). The engine bounds the decodes themselves (``decode_workers``).
    """
    global _executor
    with _executor_lock:
        if _executor is None:
            threads = max(1, int(os.environ.get("HUIKUAN_ASR_THREADS", "64")))
            _executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="asr")
        return _executor


class AsyncRecognizerStream:
    """Async facade over a ``RecognizerStream``; calls are serialised per stream."""

    def __init__(self, stream: RecognizerStream, executor: ThreadPoolExecutor | None = None):
        self.stream = stream
        self._executor = executor or asr_executor()
        self._lock = asyncio.Lock()

    async def accept(self, pcm16_8k: bytes) -> list[TranscriptEvent]:
        async with self._lock:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, self.stream.accept, pcm16_8k)

    async def flush(self) -> list[TranscriptEvent]:
        async with self._lock:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, self.stream.flush)

    async def close(self) -> None:
        async with self._lock:
            self.stream.close()
