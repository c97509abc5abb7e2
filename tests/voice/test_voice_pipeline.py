"""VoiceCall orchestration with a scripted recogniser, a tone synthesiser and a fake line.

Audio is fed in real time (20 ms frames) so the timing rules run as on a phone; each
scenario lasts one to three seconds.
"""

import asyncio
import time

import numpy as np
import pytest

from voice.asr.base import RecognizerStream, SpeechRecognizer, TranscriptEvent
from voice.audio import FRAME_BYTES_MULAW, MULAW_SILENCE, array_to_mulaw, read_wav
from voice.pipeline import CallConfig, CallerSilence, CallerSpeech, Reply, VoiceCall
from voice.tts.base import SpeechSynthesizer
from voice.turns import TurnConfig

SPEECH = array_to_mulaw(np.sin(2 * np.pi * 300 * np.arange(160) / 8000) * 4000)
SILENCE = bytes([MULAW_SILENCE]) * FRAME_BYTES_MULAW


class ScriptedStream(RecognizerStream):
    def __init__(self, script):
        self.script = sorted(script, key=lambda x: x[0])
        self.samples = 0

    def accept(self, pcm16_8k):
        self.samples += len(pcm16_8k) // 2
        now = self.samples / 8000
        out = [ev for at, ev in self.script if at <= now]
        self.script = [(at, ev) for at, ev in self.script if at > now]
        return out

    def flush(self):
        return []


class ScriptedRecognizer(SpeechRecognizer):
    name = "scripted"

    def __init__(self, script):
        self.script = script

    def load(self):
        pass

    def open_stream(self):
        return ScriptedStream(self.script)


def final(at, text, start, end):
    return (at, TranscriptEvent(text, True, 0.9, start, end))


def partial(at, text, start):
    return (at, TranscriptEvent(text, False, 0.0, start, at))


class ToneSynth(SpeechSynthesizer):
    """``text`` → a tone whose length is set per text (default 0.4 s)."""

    engine = "tone"

    def __init__(self, durations=None):
        super().__init__(voice="sine")
        self.durations = durations or {}

    def render(self, text):
        n = int(self.durations.get(text, 0.4) * 8000)
        return array_to_mulaw(np.sin(2 * np.pi * 440 * np.arange(n) / 8000) * 6000)


class Line:
    """Twilio stand-in: records what the agent sends, echoes marks as playback finishes."""

    def __init__(self):
        self.call = None
        self.events = []
        self.loop_t0 = None

    def _t(self):
        return asyncio.get_running_loop().time()

    async def send_media(self, mulaw):
        assert len(mulaw) == FRAME_BYTES_MULAW
        self.events.append(("media", self._t()))

    async def send_mark(self, name):
        self.events.append(("mark", name))

        async def echo():
            await asyncio.sleep(0.12)  # what was still in the far end's buffer
            await self.call.on_mark(name)

        asyncio.get_running_loop().create_task(echo())

    async def send_clear(self):
        self.events.append(("clear", self._t()))

    def count(self, kind):
        return sum(1 for e in self.events if e[0] == kind)


class Handler:
    def __init__(self, opening, respond=None):
        self.opening = opening
        self.respond = respond or (lambda text, seq: [])
        self.handled, self.deliveries, self.interruptions = [], [], []
        self.closed = None
        self._ended = False
        self.seq = 10

    async def open(self):
        return list(self.opening)

    async def handle(self, event):
        if isinstance(event, CallerSpeech):
            self.handled.append((event.text, round(event.started_at, 2), round(event.ended_at, 2)))
        else:
            self.handled.append((event, round(event.at, 2), round(event.at, 2)))
        self.seq += 1
        return self.respond(getattr(event, "text", ""), self.seq)

    async def record_delivery(self, turn_seq, mark):
        self.deliveries.append(turn_seq)

    async def record_interruption(self, turn_seq, played_ms):
        self.interruptions.append((turn_seq, played_ms))

    async def close(self, reason):
        self.closed = reason
        self._ended = True

    @property
    def ended(self):
        return self._ended


def make_call(handler, script, durations=None, tmp_path=None, **turns):
    line = Line()
    cfg = CallConfig(turns=TurnConfig(**turns), recording_dir=tmp_path)
    call = VoiceCall(handler, ScriptedRecognizer(script), ToneSynth(durations), line, cfg)
    line.call = call
    return call, line


async def drive(call, seconds, speech=()):
    """Feed caller audio in real time; ``speech`` is a list of (start, end) seconds."""
    await call.start()
    t0 = asyncio.get_running_loop().time()
    for i in range(int(seconds / 0.02)):
        if call.ended:
            break
        t = i * 0.02
        talking = any(a <= t < b for a, b in speech)
        await call.feed(SPEECH if talking else SILENCE)
        delay = t0 + (i + 1) * 0.02 - asyncio.get_running_loop().time()
        await asyncio.sleep(max(0.0, delay))
    if not call.ended:
        await call.stop("caller_hangup")


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_opening_disclosure_then_a_caller_turn(tmp_path):
    handler = Handler([Reply("disclosure", 1, uninterruptible=True)])
    call, line = make_call(handler, [final(1.35, "是我。", 0.6, 1.1)], tmp_path=tmp_path)
    run(drive(call, 2.2, speech=[(0.6, 1.1)]))
    assert handler.handled and handler.handled[0][0] == "是我。"
    assert handler.deliveries == [1]
    media = [e[1] for e in line.events if e[0] == "media"]
    assert len(media) == 20  # 0.4 s of 20 ms frames
    assert media[-1] - media[0] >= 0.25  # paced at real time, not dumped at once
    assert handler.closed == "caller_hangup" and call.outcome == "caller_hangup"
    caller, rate = read_wav(call.recordings["caller"])
    agent, _ = read_wav(call.recordings["agent"])
    assert rate == 8000 and abs(len(caller) - 2.2 * 8000) < 400
    assert len(agent) >= len(caller) - 160 and np.abs(agent).max() > 1000


def test_barge_in_clears_playback_and_reports_played_time():
    handler = Handler([Reply("long explanation", 1)])
    script = [partial(0.7, "我不要", 0.4), final(1.5, "我不要听这个", 0.4, 1.2)]
    call, line = make_call(handler, script, durations={"long explanation": 3.0})
    run(drive(call, 2.4, speech=[(0.4, 1.2)]))
    assert line.count("clear") == 1
    [(seq, played_ms)] = handler.interruptions
    assert seq == 1 and 300 <= played_ms <= 1500
    assert handler.deliveries == []
    assert [h[0] for h in handler.handled] == ["我不要听这个"]
    assert line.count("media") < 100  # stopped well before the 3 s (150 frames) reply ended


def test_backchannel_does_not_interrupt():
    handler = Handler([Reply("explanation", 1)])
    script = [partial(0.6, "嗯", 0.4), final(0.9, "嗯。", 0.4, 0.7)]
    call, line = make_call(handler, script, durations={"explanation": 1.2})
    run(drive(call, 2.0, speech=[(0.4, 0.7)]))
    assert line.count("clear") == 0 and handler.interruptions == []
    assert handler.deliveries == [1]
    assert handler.handled == []


def test_uninterruptible_reply_plays_out_and_words_are_answered_after():
    handler = Handler([Reply("disclosure", 1, uninterruptible=True)])
    script = [partial(0.5, "你是", 0.3), final(1.2, "你是谁？", 0.3, 0.9)]
    call, line = make_call(handler, script, durations={"disclosure": 1.2},
                           barge_in_min_speech_s=0.3)
    run(drive(call, 2.3, speech=[(0.3, 0.9)]))
    assert line.count("clear") == 0
    assert line.count("media") == 60
    assert handler.deliveries == [1]
    assert [h[0] for h in handler.handled] == ["你是谁？"]


def test_operator_message_ends_call_without_a_turn():
    handler = Handler([Reply("disclosure", 1, uninterruptible=True)])
    script = [final(1.0, "您播打的电话已关机。", 0.2, 0.9)]
    call, line = make_call(handler, script, durations={"disclosure": 2.0})
    run(drive(call, 3.0, speech=[(0.2, 0.9)]))
    assert call.outcome == handler.closed == "unreachable"
    assert handler.handled == []
    assert line.count("clear") == 1 and line.count("media") < 70


def test_no_input_reprompts_then_hangs_up():
    handler = Handler([Reply("hello", 1)],
                      respond=lambda text, seq: [Reply("还在吗？", seq)])
    call, line = make_call(handler, [], durations={"hello": 0.2, "还在吗？": 0.2},
                           no_input_timeout_s=0.4, max_reprompts=1)
    run(drive(call, 4.0))
    assert [type(h[0]) for h in handler.handled] == [CallerSilence]
    assert handler.handled[0][0].count == 1
    assert handler.closed == "no_input" and call.ended
    assert handler.deliveries == [1, 11]


def test_dtmf_is_forwarded_as_a_turn():
    handler = Handler([Reply("press 1", 1)])
    call, line = make_call(handler, [], durations={"press 1": 0.2})

    async def main():
        task = asyncio.create_task(drive(call, 1.2))
        await asyncio.sleep(0.6)
        await call.on_dtmf("1")
        await task

    run(main())
    assert handler.handled and handler.handled[0][0].digit == "1"


def test_agent_ends_call_after_goodbye_is_played():
    handler = Handler([Reply("hi", 1)],
                      respond=lambda text, seq: [Reply("再见", seq, end_call=True)])
    call, line = make_call(handler, [final(0.9, "好的我明天还", 0.3, 0.7)],
                           durations={"hi": 0.2, "再见": 0.3})
    run(drive(call, 3.0, speech=[(0.3, 0.7)]))
    assert call.outcome == handler.closed == "completed"
    assert handler.deliveries == [1, 11]


@pytest.mark.parametrize("bad", ["open", "handle"])
def test_handler_failure_ends_call_cleanly(bad):
    class Broken(Handler):
        async def open(self):
            if bad == "open":
                raise RuntimeError("boom")
            return [Reply("hi", 1)]

        async def handle(self, *a):
            raise RuntimeError("boom")

    handler = Broken([])
    call, _ = make_call(handler, [final(0.6, "喂", 0.2, 0.4)], durations={"hi": 0.1})
    run(drive(call, 2.0, speech=[(0.2, 0.4)]))
    assert handler.closed == "error"


class SlowStream(ScriptedStream):
    """Decoding the caller's words blocks for ``busy_s`` (a saturated decode pool)."""

    def __init__(self, script, busy_at, busy_s):
        super().__init__(script)
        self.busy_at, self.busy_s = busy_at, busy_s

    def accept(self, pcm16_8k):
        before = self.samples / 8000
        out = super().accept(pcm16_8k)
        if before < self.busy_at <= self.samples / 8000:
            time.sleep(self.busy_s)
        return out


class HoldingHandler(Handler):
    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.holds = 0

    async def hold(self):
        self.holds += 1
        return [Reply("hold", 90)]


@pytest.mark.parametrize(("busy_s", "holds"), [(2.0, 1), (0.5, 0)])
def test_a_saturated_recogniser_gets_a_holding_phrase_not_silence(busy_s, holds):
    handler = HoldingHandler([], respond=lambda text, seq: [Reply("answer", seq)])
    script = [final(1.2, "我明天还。", 0.3, 1.0)]
    call, line = make_call(handler, script, durations={"hold": 0.3})
    call.recognizer.open_stream = lambda: SlowStream(script, busy_at=1.2, busy_s=busy_s)
    run(drive(call, 4.5, speech=[(0.3, 1.0)]))
    assert handler.holds == holds == call.holds
    assert [h[0] for h in handler.handled] == ["我明天还。"]  # the answer still comes
    assert handler.deliveries[-1] == handler.seq


def test_a_long_reply_starts_playing_after_its_first_sentence_is_rendered():
    class Counting(ToneSynth):
        def __init__(self):
            super().__init__({"第一句。": 0.3, "第二句很长。": 1.0})
            self.rendered = []

        def render(self, text):
            self.rendered.append(text)
            return super().render(text)

    handler = Handler([Reply("第一句。第二句很长。", 1)])
    line = Line()
    synth = Counting()
    call = VoiceCall(handler, ScriptedRecognizer([]), synth, line, CallConfig())
    line.call = call
    run(drive(call, 2.0))
    assert synth.rendered == ["第一句。", "第二句很长。"]  # per sentence: cache entries too
    assert line.count("media") == 65  # both sentences, 1.3 s of 20 ms frames, in order
    assert handler.deliveries == [1]
