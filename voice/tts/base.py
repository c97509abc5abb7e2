"""Speech-synthesis interface and the on-disk cache of rendered prompts.

Most agent turns are fixed scripts (disclosure, identity check, reprompts), so rendered audio is
cached on disk keyed by engine + voice + text: after the first call they cost a file read.
Output is always what the phone line carries: 8 kHz μ-law, cut into 20 ms (160-byte) frames.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path

from voice.audio import FRAME_BYTES_MULAW, frames


class TtsError(RuntimeError):
    """Synthesiser misconfigured or failed to render."""


def default_cache_dir() -> Path:
    """``HUIKUAN_TTS_CACHE``, else ``<data dir>/tts-cache``."""
    env = os.environ.get("HUIKUAN_TTS_CACHE")
    if env:
        return Path(env).expanduser()
    from voice.asr.whisper import default_data_dir

    return default_data_dir() / "tts-cache"


class PromptCache:
    """Directory of ``<engine>/<sha256(engine, voice, text)>.ulaw`` files, written atomically."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @staticmethod
    def key(engine: str, voice: str, text: str) -> str:
        return hashlib.sha256(f"{engine}\x00{voice}\x00{text}".encode()).hexdigest()

    def path(self, engine: str, voice: str, text: str) -> Path:
        return self.root / engine / f"{self.key(engine, voice, text)}.ulaw"

    def get(self, engine: str, voice: str, text: str) -> bytes | None:
        try:
            return self.path(engine, voice, text).read_bytes()
        except OSError:
            return None

    def put(self, engine: str, voice: str, text: str, audio: bytes) -> None:
        dest = self.path(engine, voice, text)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(audio)
        os.replace(tmp, dest)


_SENTENCE_END = re.compile(r"(?<=[。！？!?；;])")


def sentences(text: str) -> list[str]:
    """The reply split after each sentence-final mark: the first is spoken while the rest are
    rendered, and each sentence is a prompt-cache entry of its own (templates share them)."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


class SpeechSynthesizer(ABC):
    """``synthesize(text)`` → 8 kHz μ-law bytes; cached when a cache is configured."""

    engine: str = "tts"

    def __init__(self, voice: str, cache: PromptCache | None = None) -> None:
        self.voice = voice
        self.cache = cache
        self.hits = 0
        self.misses = 0

    @abstractmethod
    def render(self, text: str) -> bytes:
        """Uncached synthesis: 8 kHz μ-law bytes."""

    def synthesize(self, text: str) -> bytes:
        text = text.strip()
        if not text:
            return b""
        if self.cache is not None:
            hit = self.cache.get(self.engine, self.voice, text)
            if hit is not None:
                self.hits += 1
                return hit
        self.misses += 1
        audio = self.render(text)
        if self.cache is not None:
            self.cache.put(self.engine, self.voice, text, audio)
        return audio

    def frames(self, text: str) -> list[bytes]:
        """The reply as 20 ms frames of 160 bytes, ready to send."""
        return list(frames(self.synthesize(text), FRAME_BYTES_MULAW))

    def prewarm(self, texts: Iterable[str]) -> int:
        """Render fixed prompts ahead of the first call; returns how many were rendered."""
        before = self.misses
        for t in texts:
            for sentence in sentences(t):
                self.synthesize(sentence)
        return self.misses - before


def synthesizer_from_settings(tts: str | None = None, cache_dir: str | Path | None = None
                              ) -> SpeechSynthesizer:
    """``HUIKUAN_TTS`` (default ``espeak``; ``espeak:<voice>`` picks a voice)."""
    spec = (tts or os.environ.get("HUIKUAN_TTS") or "espeak").strip()
    engine, _, voice = spec.partition(":")
    cache = PromptCache(cache_dir or default_cache_dir())
    if engine.lower() in ("espeak", "espeak-ng"):
        from voice.tts.espeak import EspeakSynthesizer

        return EspeakSynthesizer(voice=voice or "cmn-latn-pinyin", cache=cache)
    raise TtsError(f"unknown HUIKUAN_TTS={spec!r}; available: espeak[:voice]")
