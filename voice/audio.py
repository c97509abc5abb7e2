"""Telephone audio primitives: G.711 μ-law, resampling, 20 ms framing, energy, WAV I/O.

Everything is numpy lookup tables and FIR filters because ``audioop`` is deprecated (and
removed in Python 3.13); the phone path must keep working after an interpreter upgrade.
"""

from __future__ import annotations

import io
import json
import math
import struct
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

PHONE_RATE = 8000
ASR_RATE = 16000
FRAME_MS = 20
FRAME_SAMPLES_8K = PHONE_RATE * FRAME_MS // 1000  # 160
FRAME_BYTES_MULAW = FRAME_SAMPLES_8K  # one byte per sample
FRAME_BYTES_PCM16_8K = FRAME_SAMPLES_8K * 2
MULAW_SILENCE = 0xFF  # μ-law code for 0 (positive zero)

_BIAS = 0x84
_CLIP = 32635


def _build_decode_table() -> np.ndarray:
    codes = np.arange(256, dtype=np.int32)
    u = ~codes & 0xFF
    sign = u & 0x80
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


def _build_encode_table() -> np.ndarray:
    """Index by ``int16.view(uint16)``: 65,536 entries, so encoding is one gather."""
    samples = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)
    sign = np.where(samples < 0, 0x80, 0)
    mag = np.minimum(np.abs(samples), _CLIP) + _BIAS
    exponent = np.zeros_like(mag)
    for e in range(7, 0, -1):  # position of the highest set bit above bit 7
        exponent = np.where((exponent == 0) & (mag >= (1 << (e + 7))), e, exponent)
    mantissa = (mag >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)


MULAW_DECODE_TABLE = _build_decode_table()
MULAW_ENCODE_TABLE = _build_encode_table()


def mulaw_to_pcm16(data: bytes) -> bytes:
    """μ-law bytes → little-endian signed 16-bit PCM bytes (same sample rate)."""
    return MULAW_DECODE_TABLE[np.frombuffer(data, dtype=np.uint8)].astype("<i2").tobytes()


def pcm16_to_mulaw(data: bytes) -> bytes:
    """Little-endian signed 16-bit PCM bytes → μ-law bytes."""
    if len(data) % 2:
        raise ValueError("PCM16 data must have an even number of bytes")
    return MULAW_ENCODE_TABLE[np.frombuffer(data, dtype="<i2").view(np.uint16)].tobytes()


def mulaw_to_array(data: bytes) -> np.ndarray:
    return MULAW_DECODE_TABLE[np.frombuffer(data, dtype=np.uint8)]


def array_to_mulaw(samples: np.ndarray) -> bytes:
    return MULAW_ENCODE_TABLE[to_int16(samples).view(np.uint16)].tobytes()


def pcm16_to_array(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2").astype(np.int16)


def to_int16(samples: np.ndarray) -> np.ndarray:
    """Float (-1..1) or integer samples → clipped int16."""
    if samples.dtype == np.int16:
        return samples
    if np.issubdtype(samples.dtype, np.floating):
        return np.clip(np.round(samples * 32767.0), -32768, 32767).astype(np.int16)
    return np.clip(samples, -32768, 32767).astype(np.int16)


class Resampler:
    """Streaming rational polyphase resampler (windowed-sinc anti-alias filter).

    State carries across calls so that 20 ms chunks resample without clicks at their edges,
    which matters for recognisers fed frame by frame.
    """

    def __init__(self, src_rate: int, dst_rate: int, taps_per_phase: int = 32) -> None:
        if src_rate <= 0 or dst_rate <= 0:
            raise ValueError("sample rates must be positive")
        g = math.gcd(src_rate, dst_rate)
        self.src_rate, self.dst_rate = src_rate, dst_rate
        self.up, self.down = dst_rate // g, src_rate // g
        self._k = taps_per_phase
        length = taps_per_phase * self.up
        cutoff = 0.5 / max(self.up, self.down) * 0.94  # leave a transition band below Nyquist
        n = np.arange(length) - (length - 1) / 2.0
        h = 2 * cutoff * np.sinc(2 * cutoff * n) * np.kaiser(length, 8.0)
        h *= self.up / h.sum()
        # phase p, tap k → h[p + k*up]; tap k multiplies input x[i - k]
        self._poly = h.reshape(taps_per_phase, self.up).T.astype(np.float32).copy()
        self.delay_out = (length - 1) / 2.0 / self.down  # group delay in output samples
        self._hist = np.zeros(taps_per_phase - 1, dtype=np.float32)
        self._n_in = 0  # input samples consumed so far
        self._m_out = 0  # next output sample index

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Resample a chunk (int16 or float); returns float32 in the input's scale."""
        x = np.asarray(samples, dtype=np.float32)
        if self.up == self.down:
            return x.copy()
        buf = np.concatenate([self._hist, x])
        buf_start = self._n_in - len(self._hist)
        self._n_in += len(x)
        # output m uses input index i = (m*down)//up, which must already have arrived
        m_end = (self._n_in * self.up + self.down - 1) // self.down
        if m_end <= self._m_out:
            self._hist = buf[-(self._k - 1):] if self._k > 1 else buf[:0]
            return np.zeros(0, dtype=np.float32)
        if self.down == 1:  # pure interpolation: one convolution per phase, interleaved
            out = np.empty((len(x), self.up), dtype=np.float32)
            for p in range(self.up):
                out[:, p] = np.convolve(buf, self._poly[p], mode="valid")
            out = out.reshape(-1)
        elif self.up == 1:  # pure decimation: filter, then keep every down-th sample
            c = np.convolve(buf, self._poly[0], mode="valid")
            m = np.arange(self._m_out, m_end, dtype=np.int64)
            out = c[m * self.down - buf_start - (self._k - 1)]
        else:
            m = np.arange(self._m_out, m_end, dtype=np.int64)
            pos = m * self.down
            i = pos // self.up - buf_start
            idx = i[:, None] - np.arange(self._k)[None, :]
            out = np.einsum("mk,mk->m", buf[idx], self._poly[pos % self.up])
        self._m_out = m_end
        self._hist = buf[-(self._k - 1):] if self._k > 1 else buf[:0]
        return out.astype(np.float32)


def resample(samples: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """One-shot resampling of a whole clip, delay-compensated; returns int16."""
    x = np.asarray(samples)
    if src_rate == dst_rate:
        return to_int16(x)
    r = Resampler(src_rate, dst_rate)
    scale = 32767.0 if np.issubdtype(x.dtype, np.floating) else 1.0
    pad = int(math.ceil(r.delay_out * src_rate / dst_rate)) + r._k + 1
    y = r.process(np.concatenate([x.astype(np.float32) * scale, np.zeros(pad, np.float32)]))
    d = int(round(r.delay_out))
    n_out = int(round(len(x) * dst_rate / src_rate))
    return np.clip(np.round(y[d:d + n_out]), -32768, 32767).astype(np.int16)


def upsample_8k_to_16k(pcm16: bytes) -> bytes:
    return resample(pcm16_to_array(pcm16), PHONE_RATE, ASR_RATE).astype("<i2").tobytes()


def frames(data: bytes, frame_bytes: int = FRAME_BYTES_MULAW, pad: int | None = MULAW_SILENCE
           ) -> Iterator[bytes]:
    """Split audio into fixed frames (20 ms of μ-law by default); pad the last one.

    ``pad=None`` drops a short trailing remainder instead of padding it.
    """
    for off in range(0, len(data), frame_bytes):
        chunk = data[off:off + frame_bytes]
        if len(chunk) < frame_bytes:
            if pad is None:
                return
            chunk = chunk + bytes([pad]) * (frame_bytes - len(chunk))
        yield chunk


def rms(samples: np.ndarray | bytes) -> float:
    """RMS energy of PCM16 audio normalised to 0..1 (full-scale sine ≈ 0.707)."""
    x = pcm16_to_array(samples) if isinstance(samples, bytes | bytearray) else samples
    if len(x) == 0:
        return 0.0
    xf = np.asarray(x, dtype=np.float64) / 32768.0
    return float(np.sqrt(np.mean(xf * xf)))


def rms_dbfs(samples: np.ndarray | bytes) -> float:
    return 20.0 * math.log10(max(rms(samples), 1e-9))


def frame_levels_dbfs(samples: np.ndarray, frame_samples: int = FRAME_SAMPLES_8K) -> list[float]:
    """``rms_dbfs`` of each whole ``frame_samples`` frame of ``samples``, in one numpy pass
    (a trailing partial frame is ignored)."""
    n = len(samples) // frame_samples
    if n == 0:
        return []
    xf = np.asarray(samples[:n * frame_samples], dtype=np.float64).reshape(n, frame_samples)
    xf = xf / 32768.0
    ms = np.einsum("ij,ij->i", xf, xf) / frame_samples
    return (20.0 * np.log10(np.maximum(np.sqrt(ms), 1e-9))).tolist()


class EnergyVad:
    """Frame-level speech/silence decision with an adaptive noise floor and hangover.

    Cheap enough to run on every 20 ms frame on the event loop. Reports state changes so the
    caller can time speech start/end without a clock of its own.
    """

    def __init__(self, threshold_dbfs: float = -40.0, noise_margin_db: float = 10.0,
                 start_frames: int = 3, end_frames: int = 10) -> None:
        self.threshold_dbfs = threshold_dbfs
        self.noise_margin_db = noise_margin_db
        self.start_frames = start_frames
        self.end_frames = end_frames
        self.noise_dbfs = -60.0
        self.in_speech = False
        self._run = 0

    def is_speech_frame(self, level_dbfs: float) -> bool:
        return level_dbfs > max(self.threshold_dbfs, self.noise_dbfs + self.noise_margin_db)

    def update(self, frame: np.ndarray | bytes) -> str | None:
        """Feed one frame; returns "start", "end" or None."""
        return self.update_level(rms_dbfs(frame))

    def update_level(self, level: float) -> str | None:
        """Like ``update`` for a frame whose level (dBFS) is already known."""
        speech = self.is_speech_frame(level)
        # Track the floor quickly downward and slowly upward; very slowly during "speech" so
        # that a line with steady loud noise stops counting as speech after a few seconds.
        if level < self.noise_dbfs:
            rate = 0.5
        else:
            rate = 0.003 if speech else 0.05
        self.noise_dbfs += rate * (level - self.noise_dbfs)
        if speech != self.in_speech:
            self._run += 1
            if self._run >= (self.start_frames if speech else self.end_frames):
                self.in_speech = speech
                self._run = 0
                return "start" if speech else "end"
        else:
            self._run = 0
        return None


def read_wav(path: str | Path | BinaryIO) -> tuple[np.ndarray, int]:
    """Read a PCM WAV (8/16/32-bit int, any rate, any channels) → mono int16 and its rate."""
    with wave.open(path if hasattr(path, "read") else str(path), "rb") as w:  # type: ignore[arg-type]
        n_ch, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
        raw = w.readframes(w.getnframes())
    if width == 2:
        x = np.frombuffer(raw, dtype="<i2").astype(np.int32)
    elif width == 1:
        x = (np.frombuffer(raw, dtype=np.uint8).astype(np.int32) - 128) << 8
    elif width == 4:
        x = np.frombuffer(raw, dtype="<i4").astype(np.int64) >> 16
    else:
        raise ValueError(f"{path}: unsupported sample width {width}")
    if n_ch > 1:
        x = x.reshape(-1, n_ch).mean(axis=1)
    return to_int16(np.asarray(x)), rate


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(to_int16(samples).astype("<i2").tobytes())
    return buf.getvalue()


def write_wav(path: str | Path, samples: np.ndarray, rate: int) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(wav_bytes(samples, rate))
    return p


def read_wav_bytes(data: bytes) -> tuple[np.ndarray, int]:
    return read_wav(io.BytesIO(data))


def wav_to_mulaw_8k(path: str | Path) -> bytes:
    """Any PCM WAV → 8 kHz μ-law, the way a phone line would carry it."""
    x, rate = read_wav(path)
    return array_to_mulaw(resample(x, rate, PHONE_RATE))


class WavRecorder:
    """Append-only mono 16-bit WAV writer used for call recordings (one file per leg).

    Writes go straight to a buffered file; the RIFF sizes in the header are patched every
    ``patch_every_s`` seconds of audio and on ``close`` (the ``wave`` module re-seeks and
    rewrites the header on every write, which costs more than the 20 ms frames themselves).
    """

    def __init__(self, path: str | Path, rate: int = PHONE_RATE,
                 patch_every_s: float = 5.0, label: dict[str, str] | None = None) -> None:
        self.path = Path(path)
        self.label = label  # written as a metadata chunk on close (AI-generated speech)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rate = rate
        self._f: BinaryIO | None = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        self.samples_written = 0
        self._patch_every = max(1, int(patch_every_s * rate))
        self._patched_at = 0
        self._f.write(self._header(0))

    def _header(self, n_samples: int) -> bytes:
        data = n_samples * 2
        return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + data, b"WAVE", b"fmt ", 16, 1, 1,
                           self.rate, self.rate * 2, 2, 16, b"data", data)

    def _patch(self) -> None:
        f = self._f
        assert f is not None
        f.flush()
        pos = f.tell()
        f.seek(0)
        f.write(self._header(self.samples_written))
        f.seek(pos)
        self._patched_at = self.samples_written

    def write_pcm16(self, pcm16: bytes) -> None:
        if self._f is None:
            return
        n = len(pcm16) // 2
        self._f.write(pcm16[:n * 2])
        self.samples_written += n
        if self.samples_written - self._patched_at >= self._patch_every:
            self._patch()

    def write_mulaw(self, mulaw: bytes) -> None:
        self.write_pcm16(mulaw_to_pcm16(mulaw))

    def pad_to(self, seconds: float) -> None:
        """Write silence up to ``seconds`` so that two legs stay time-aligned."""
        missing = int(seconds * self.rate) - self.samples_written
        if missing > 0:
            self.write_pcm16(b"\x00\x00" * missing)

    def close(self) -> None:
        if self._f is not None:
            self._patch()
            if self.label:
                self._write_label(self._f, self.label)
            self._f.close()
            self._f = None

    @property
    def duration_s(self) -> float:
        return self.samples_written / self.rate

    def _write_label(self, f: BinaryIO, label: dict[str, str]) -> None:
        """A RIFF ``LIST/INFO`` chunk after the audio, ``ICMT`` holding the label as JSON:
        the implicit identifier 《人工智能生成合成内容标识办法》 asks in the metadata of stored
        AI-generated audio. Players and the ``wave`` module skip chunks after ``data``."""
        text = json.dumps(label, ensure_ascii=False, sort_keys=True).encode("utf-8") + b"\0"
        if len(text) % 2:
            text += b"\0"
        info = b"INFO" + b"ICMT" + struct.pack("<I", len(text)) + text
        f.seek(0, 2)
        f.write(b"LIST" + struct.pack("<I", len(info)) + info)
        size = f.tell()
        f.seek(4)
        f.write(struct.pack("<I", size - 8))  # the RIFF size covers the label too


def ai_content_label(producer: str) -> dict[str, str]:
    """The implicit label for AI-generated speech (《人工智能生成合成内容标识办法》, in force
    2025-09-01): that it is AI-generated, who produced it; the content ID is added per call."""
    return {"AIGC": "1", "Label": "AI生成合成内容", "ContentProducer": producer,
            "ProduceMethod": "text-to-speech"}


def read_wav_label(path: str | Path) -> dict[str, str] | None:
    """The AI-content label of a recording written by :class:`WavRecorder`, if any: walks the
    RIFF chunk headers (seeking past the audio), never reading the samples."""
    with open(path, "rb") as f:
        if f.read(12)[8:] != b"WAVE":
            return None
        while len(header := f.read(8)) == 8:
            kind, size = header[:4], struct.unpack("<I", header[4:])[0]
            if kind == b"LIST" and size >= 12:
                body = f.read(size)
                if body[:8] == b"INFOICMT":
                    length = struct.unpack("<I", body[8:12])[0]
                    return json.loads(body[12:12 + length].rstrip(b"\0").decode("utf-8"))
            else:
                f.seek(size + size % 2, 1)
    return None
