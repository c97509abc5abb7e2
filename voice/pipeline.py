"""One phone call, independent of the telephony protocol.

``VoiceCall`` joins the pieces: caller audio → energy VAD + recogniser → turn-taking rules →
the dialogue (a ``TurnHandler``) → synthesiser → paced 20 ms frames to a ``MediaSink``. A
protocol adapter (``voice.telephony.twilio_stream.serve_media_stream`` for Twilio) only has
to call ``start``/``feed``/``on_mark``/``on_dtmf``/``stop`` and provide a sink, so FreeSWITCH
or Asterisk adapters can reuse everything here.

The handler receives typed caller inputs: ``CallerSpeech`` (a recognised turn),
``CallerKeyPress`` and ``CallerSilence`` (n no-input windows in a row: reprompt). Times are
seconds since the call started (``VoiceCall.started_wall`` is that origin in UTC).

``close`` reasons: ``completed`` (the agent ended it), ``voicemail``, ``unreachable``,
``no_input``, ``long_silence``, ``caller_hangup``, ``protocol_error``, ``error``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from voice.asr.base import AsyncRecognizerStream, SpeechRecognizer, TranscriptEvent
from voice.audio import (
    FRAME_BYTES_MULAW,
    FRAME_BYTES_PCM16_8K,
    FRAME_MS,
    FRAME_SAMPLES_8K,
    PHONE_RATE,
    EnergyVad,
    WavRecorder,
    frame_levels_dbfs,
    frames,
    mulaw_to_array,
)
from voice.tts.base import SpeechSynthesizer, sentences
from voice.turns import (
    Action,
    BargeIn,
    EndOfTurn,
    HangUp,
    Reprompt,
    TurnConfig,
    TurnTaker,
)
from voice.voicemail import VoicemailDetector

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class CallerSpeech:
    """A finished caller turn as the recogniser heard it (times in call seconds)."""

    text: str
    confidence: float
    started_at: float
    ended_at: float


@dataclass(frozen=True)
class CallerKeyPress:
    digit: str
    at: float


@dataclass(frozen=True)
class CallerSilence:
    """The caller said nothing for a whole no-input window; ``count`` windows in a row."""

    count: int
    at: float


CallerInput = CallerSpeech | CallerKeyPress | CallerSilence
# Queued for the turn worker: the call opening, one caller input, or None to stop.
_OPEN = object()


@dataclass(frozen=True)
class Reply:
    """One utterance the agent wants spoken; ``turn_seq`` identifies it to the handler."""

    text: str
    turn_seq: int
    uninterruptible: bool = False
    end_call: bool = False


class TurnHandler(Protocol):
    """The dialogue side of a call (the lead's session object implements this)."""

    async def open(self) -> list[Reply]: ...

    async def handle(self, event: CallerInput) -> list[Reply]: ...

    async def record_delivery(self, turn_seq: int, mark: str) -> None: ...

    async def record_interruption(self, turn_seq: int, played_ms: int) -> None: ...

    async def close(self, outcome_or_reason: str) -> None: ...

    @property
    def ended(self) -> bool: ...

    # Optional: ``async def hold(self) -> list[Reply]`` (a holding phrase, see CallConfig).


class MediaSink(Protocol):
    """Outbound audio path of the telephony adapter."""

    async def send_media(self, mulaw: bytes) -> None: ...

    async def send_mark(self, name: str) -> None: ...

    async def send_clear(self) -> None: ...


@dataclass
class CallConfig:
    turns: TurnConfig = field(default_factory=TurnConfig)
    detect_voicemail: bool = True
    voicemail_long_greeting_s: float = 6.0
    voicemail_window_s: float = 30.0
    realtime: bool = True  # pace outbound frames at 20 ms (False: as fast as possible)
    lead_s: float = 0.1  # how far ahead of real time frames may be sent (jitter margin)
    tick_s: float = 0.05
    mark_timeout_s: float = 5.0  # a mark not echoed this long after its audio ended counts
    vad_threshold_dbfs: float = -40.0
    # Caller audio is handed to the recogniser in chunks of this much (one thread-pool hop and
    # one engine call each); 20 ms chunks cost Vosk about twice the CPU of 100 ms ones.
    asr_chunk_s: float = 0.1
    recording_dir: Path | None = None
    # Implicit AI-content label written into the agent leg's recording (metadata chunk).
    ai_label: dict[str, str] | None = None
    # Backpressure: when recognising the caller's last words has taken this long (the decode
    # pool is saturated), say a short holding phrase (the handler's ``hold``) instead of
    # leaving silence; once per caller turn. None: never.
    hold_after_s: float | None = 1.5


@dataclass
class _Playing:
    reply: Reply
    mark: str
    started: float
    duration_s: float
    sent_frames: int = 0


class VoiceCall:
    """Per-call orchestration; create one per media stream, then ``await start()``."""

    def __init__(self, handler: TurnHandler, recognizer: SpeechRecognizer,
                 synthesizer: SpeechSynthesizer, sink: MediaSink,
                 config: CallConfig | None = None, *, call_id: str | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.handler = handler
        self.recognizer = recognizer
        self.synthesizer = synthesizer
        self.sink = sink
        self.cfg = config or CallConfig()
        self.call_id = call_id or uuid.uuid4().hex[:12]
        self._clock = clock
        self._t0 = clock()
        self.started_wall = datetime.now(UTC)
        turns = self.cfg.turns
        if recognizer.decides_end_of_turn:
            turns = replace(turns, min_silence_s=turns.min_silence_after_turn_final_s)
        self.turns = TurnTaker(turns, now=0.0)
        self.turns.on_agent_busy(0.0)
        self.voicemail = VoicemailDetector(self.cfg.voicemail_long_greeting_s,
                                           self.cfg.voicemail_window_s)
        self._vad = EnergyVad(threshold_dbfs=self.cfg.vad_threshold_dbfs)
        self._pcm_rest = b""
        self._asr_buf = bytearray()
        self._asr_chunk_bytes = max(FRAME_BYTES_PCM16_8K,
                                    int(self.cfg.asr_chunk_s * PHONE_RATE) * 2)
        self._audio_q: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._input_q: asyncio.Queue[CallerInput | object | None] = asyncio.Queue()
        self._play_q: asyncio.Queue[Reply] = asyncio.Queue()
        self._handling = False
        self._current: _Playing | None = None
        self._pending_marks: dict[str, _Playing] = {}
        self._mark_ids = itertools.count(1)
        self._cancel_playback = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._ended = asyncio.Event()
        self._closing = False
        self._asr: AsyncRecognizerStream | None = None
        self._asr_since: float | None = None  # when the running decode started
        self._hold_armed = False  # the caller finished speaking and has heard nothing since
        self.holds = 0  # holding phrases said (backpressure)
        self.outcome: str | None = None
        self.transcripts: list[TranscriptEvent] = []
        self.recordings: dict[str, Path] = {}
        self._rec_in: WavRecorder | None = None
        self._rec_out: WavRecorder | None = None
        if self.cfg.recording_dir is not None:
            d = Path(self.cfg.recording_dir)
            self._rec_in = WavRecorder(d / f"{self.call_id}-caller.wav")
            label = {**self.cfg.ai_label, "ContentID": self.call_id} if self.cfg.ai_label else None
            self._rec_out = WavRecorder(d / f"{self.call_id}-agent.wav", label=label)
            self.recordings = {"caller": self._rec_in.path, "agent": self._rec_out.path}

    # --- public API -------------------------------------------------------------------------
    def now(self) -> float:
        """Seconds since the call started."""
        return self._clock() - self._t0

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    async def start(self) -> None:
        """Open the recogniser stream, start the workers and ask the handler to open."""
        stream = await asyncio.to_thread(self.recognizer.open_stream)
        self._asr = AsyncRecognizerStream(stream)
        for worker in (self._asr_loop, self._tick_loop, self._turn_loop, self._play_loop):
            self._tasks.append(asyncio.create_task(self._supervised(worker)))
        self._input_q.put_nowait(_OPEN)

    async def feed(self, mulaw: bytes) -> None:
        """Caller audio (8 kHz μ-law, any length; Twilio sends 20 ms)."""
        if self._closing or not mulaw:
            return
        now = self.now()
        samples = mulaw_to_array(mulaw)
        pcm = samples.astype("<i2", copy=False).tobytes()
        if self._rec_in:
            self._rec_in.write_pcm16(pcm)
        if self._pcm_rest:
            data = self._pcm_rest + pcm
            samples = np.frombuffer(data, dtype="<i2")
        else:
            data = pcm
        n = len(samples) // FRAME_SAMPLES_8K * FRAME_SAMPLES_8K
        self._pcm_rest = data[n * 2:]
        actions: list[Action] = []
        outcome = None
        for level in frame_levels_dbfs(samples[:n]):
            change = self._vad.update_level(level)
            if change == "start":
                actions += self.turns.on_speech_start(now)
                self.voicemail.on_speech_start(now)
            elif change == "end":
                actions += self.turns.on_speech_end(now)
                self._hold_armed = True
                outcome = self._voicemail_check(self.voicemail.on_speech_end(now)) or outcome
        self._asr_buf += pcm
        if len(self._asr_buf) >= self._asr_chunk_bytes:
            self._audio_q.put_nowait(bytes(self._asr_buf))
            self._asr_buf.clear()
        if outcome:
            await self._end(outcome)
            return
        await self._apply(actions)

    async def on_mark(self, name: str) -> None:
        """The far end has played everything up to mark ``name``."""
        playing = self._pending_marks.pop(name, None)
        if playing is None or self._closing:
            return
        with contextlib.suppress(Exception):
            await self.handler.record_delivery(playing.reply.turn_seq, name)
        if playing.reply.uninterruptible and not any(
                p.reply.uninterruptible for p in self._pending_marks.values()) and not (
                self._current and self._current.reply.uninterruptible):
            self.turns.uninterruptible = False
        if playing.reply.end_call:
            await self._end("completed")
            return
        self._maybe_idle()

    async def on_dtmf(self, digit: str) -> None:
        if self._closing:
            return
        now = self.now()
        self.turns.on_dtmf(now)
        if self.turns.agent == "speaking" and not self.turns.uninterruptible:
            self.turns.on_playback_done(now)
            await self._barge_in(BargeIn(self._current.reply.turn_seq if self._current else None,
                                         "dtmf"))
        self.turns.on_agent_busy(now)
        self._input_q.put_nowait(CallerKeyPress(digit, now))

    async def stop(self, reason: str = "caller_hangup") -> None:
        """The line went away (Twilio ``stop`` or websocket closed)."""
        await self._end(reason)

    async def wait_ended(self) -> None:
        await self._ended.wait()

    # --- internals --------------------------------------------------------------------------
    async def _supervised(self, worker: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """A worker that fails ends the call (reason ``error``) instead of dying silently and
        leaving a call that never answers again."""
        try:
            await worker()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("call %s: worker failed; ending the call", self.call_id)
            if not self._closing:
                await self._end("error")

    def _voicemail_check(self, outcome: str | None) -> str | None:
        return outcome if self.cfg.detect_voicemail else None

    async def _apply(self, actions: list[Action]) -> None:
        for a in actions:
            if self._closing:
                return
            if isinstance(a, BargeIn):
                await self._barge_in(a)
            elif isinstance(a, EndOfTurn):
                self._hold_armed = False
                self._input_q.put_nowait(CallerSpeech(a.text, a.confidence, a.started_at,
                                                      a.ended_at))
            elif isinstance(a, Reprompt):
                self._input_q.put_nowait(CallerSilence(a.count, self.now()))
            elif isinstance(a, HangUp):
                await self._end(a.reason)

    async def _asr_loop(self) -> None:
        assert self._asr is not None
        while True:
            chunk = await self._audio_q.get()
            parts = [chunk]
            while not self._audio_q.empty():  # batch what piled up during a slow decode
                parts.append(self._audio_q.get_nowait())
            done = None in parts
            pcm = b"".join(p for p in parts if p)
            self._asr_since = self.now()
            events = await self._asr.accept(pcm) if pcm else []
            self._asr_since = None
            if done:
                events += await self._asr.flush()
            for ev in events:
                await self._on_transcript(ev)
            if done or self._closing:
                return

    async def _on_transcript(self, ev: TranscriptEvent) -> None:
        if self._closing:
            return
        self.transcripts.append(ev)
        now = self.now()
        if self.cfg.detect_voicemail and self.voicemail.active(ev.start_s):
            outcome = self.voicemail.on_text(ev.text, ev.start_s) if ev.is_final else None
            if outcome:
                await self._end(outcome)
                return
        await self._apply(self.turns.on_transcript(ev.text, ev.is_final, ev.confidence, now,
                                                   ev.start_s, ev.end_s))

    async def _tick_loop(self) -> None:
        while not self._closing:
            await asyncio.sleep(self.cfg.tick_s)
            now = self.now()
            if self.cfg.detect_voicemail:
                outcome = self.voicemail.tick(now)
                if outcome:
                    await self._end(outcome)
                    return
            self._expire_marks(now)
            self.turns.asr_busy = self._asr_since is not None and now - self._asr_since > 0.3
            await self._maybe_hold(now)
            await self._apply(self.turns.tick(now))

    async def _maybe_hold(self, now: float) -> None:
        hold = getattr(self.handler, "hold", None)
        limit = self.cfg.hold_after_s
        if (hold is None or limit is None or not self._hold_armed or self._asr_since is None
                or now - self._asr_since < limit or self.turns.in_speech
                or self.turns.agent != "listening" or self._handling):
            return
        self._hold_armed = False
        self.holds += 1
        log.info("call %s: recognition busy for %.1f s; holding phrase", self.call_id,
                 now - self._asr_since)
        for reply in await hold():
            self._play_q.put_nowait(reply)

    def _expire_marks(self, now: float) -> None:
        for name, p in list(self._pending_marks.items()):
            if now > p.started + p.duration_s + self.cfg.mark_timeout_s:
                log.warning("call %s: mark %s never echoed; assuming played", self.call_id, name)
                task = asyncio.create_task(self.on_mark(name))
                self._tasks.append(task)

    async def _turn_loop(self) -> None:
        while True:
            item = await self._input_q.get()
            if item is None or self._closing:
                return
            self._handling = True
            self.turns.on_agent_busy(self.now())
            try:
                if item is _OPEN:
                    replies = await self.handler.open()
                else:
                    assert isinstance(item, CallerSpeech | CallerKeyPress | CallerSilence)
                    replies = await self.handler.handle(item)
            except Exception:
                log.exception("call %s: turn handler failed", self.call_id)
                self._handling = False
                await self._end("error")
                return
            self._handling = False
            for r in replies:
                self._play_q.put_nowait(r)
            if not replies and self.handler.ended:
                await self._end("completed")
                return
            self._maybe_idle()

    def _maybe_idle(self) -> None:
        """Back to listening once nothing is being composed, played or awaiting its mark."""
        if (self._closing or self._handling or self._current or self._pending_marks
                or not self._play_q.empty() or not self._input_q.empty()):
            return
        if self.handler.ended:
            task = asyncio.create_task(self._end("completed"))
            self._tasks.append(task)
            return
        if self.turns.agent != "listening":
            self.turns.on_playback_done(self.now())

    async def _play_loop(self) -> None:
        next_t = 0.0
        while True:
            reply = await self._play_q.get()
            if self._closing:
                return
            parts = sentences(reply.text) or [""]
            rendering = asyncio.ensure_future(self._render(reply, parts[0]))
            playing: _Playing | None = None
            for index in range(len(parts)):
                audio = await rendering
                if index + 1 < len(parts):  # the next sentence renders while this one plays
                    rendering = asyncio.ensure_future(self._render(reply, parts[index + 1]))
                if self._closing:
                    rendering.cancel()
                    return
                now = self.now()
                if playing is None:
                    self._cancel_playback.clear()
                    playing = _Playing(reply, f"t{reply.turn_seq}-m{next(self._mark_ids)}", now,
                                       0.0)
                    self._current = playing
                    unint = reply.uninterruptible or any(
                        p.reply.uninterruptible for p in self._pending_marks.values())
                    self.turns.on_playback_start(reply.turn_seq, unint, now)
                playing.duration_s += len(audio) / 8000.0
                next_t = max(next_t, now)
                for frame in frames(audio, FRAME_BYTES_MULAW) if audio else ():
                    if self._cancel_playback.is_set() or self._closing:
                        break
                    if self.cfg.realtime:
                        delay = next_t - self.cfg.lead_s - self.now()
                        if delay > 0:
                            await asyncio.sleep(delay)
                        if self._cancel_playback.is_set() or self._closing:
                            break
                    else:
                        await asyncio.sleep(0)
                    if self._rec_out:
                        self._rec_out.pad_to(max(0.0, next_t - FRAME_MS / 1000))
                        self._rec_out.write_mulaw(frame)
                    await self.sink.send_media(frame)
                    playing.sent_frames += 1
                    next_t += FRAME_MS / 1000
                if self._cancel_playback.is_set() or self._closing:
                    rendering.cancel()
                    break
            assert playing is not None
            if self._cancel_playback.is_set() or self._closing:
                continue
            self._pending_marks[playing.mark] = playing
            self._current = None
            await self.sink.send_mark(playing.mark)

    async def _render(self, reply: Reply, text: str) -> bytes:
        try:
            return await asyncio.to_thread(self.synthesizer.synthesize, text)
        except Exception:
            log.exception("call %s: synthesis failed for turn %s", self.call_id, reply.turn_seq)
            return b""

    async def _barge_in(self, action: BargeIn) -> None:
        """Stop talking: drop queued replies, clear the far end's buffer, tell the handler."""
        now = self.now()
        interrupted = [p for p in self._pending_marks.values()]
        if self._current is not None:
            interrupted.append(self._current)
        self._cancel_playback.set()
        while not self._play_q.empty():
            self._play_q.get_nowait()
        self._pending_marks.clear()
        self._current = None
        with contextlib.suppress(Exception):
            await self.sink.send_clear()
        for p in interrupted:
            played_ms = int(max(0.0, min(now - p.started, p.duration_s)) * 1000)
            with contextlib.suppress(Exception):
                await self.handler.record_interruption(p.reply.turn_seq, played_ms)
        log.info("call %s: barge-in (%s)", self.call_id, action.reason)
        self._maybe_idle()

    async def _end(self, reason: str) -> None:
        if self._closing:
            return
        self._closing = True
        self.outcome = reason
        self._cancel_playback.set()
        if reason in ("voicemail", "unreachable") and (self._current or self._pending_marks):
            with contextlib.suppress(Exception):
                await self.sink.send_clear()
        me = asyncio.current_task()
        for t in self._tasks:
            if t is not me:
                t.cancel()
        if self._rec_out and self._rec_in:
            self._rec_out.pad_to(self._rec_in.duration_s)
        for rec in (self._rec_in, self._rec_out):
            if rec:
                rec.close()
        if self._asr is not None:
            with contextlib.suppress(Exception):
                await self._asr.close()
        try:
            await self.handler.close(reason)
        except Exception:
            log.exception("call %s: handler.close failed", self.call_id)
        finally:
            self._ended.set()
