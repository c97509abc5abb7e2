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

    @abstractmethod
    def load(self) -> None:
        """Load the model or raise ``AsrError`` with an actionable message."""

    @abstractmethod
    def open_stream(self) -> RecognizerStream:
        """A fresh recogniser for one call (loads the model first if needed)."""


_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def asr_executor() -> ThreadPoolExecutor:
    """Process-wide pool for decoding; size from ``HUIKUAN_ASR_WORKERS`` (default 2).

    Bounded on purpose: with more concurrent calls than cores, decodes queue rather than
    oversubscribing the CPU.
    """
    global _executor
    with _executor_lock:
        if _executor is None:
            workers = max(1, int(os.environ.get("HUIKUAN_ASR_WORKERS", "2")))
            _executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="asr")
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
