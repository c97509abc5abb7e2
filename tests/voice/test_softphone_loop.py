"""Softphone ↔ websocket server running serve_media_stream + VoiceCall, over real sockets."""

import asyncio
import shutil
from pathlib import Path

import numpy as np
import pytest
from websockets.asyncio.server import serve

from voice.asr.base import RecognizerStream, SpeechRecognizer, TranscriptEvent
from voice.audio import EnergyVad, array_to_mulaw, pcm16_to_array, read_wav
from voice.pipeline import CallConfig, Reply, VoiceCall
from voice.softphone import run_softphone
from voice.telephony.twilio_stream import serve_media_stream
from voice.tts.base import SpeechSynthesizer

CLIPS = Path(__file__).parent / "clips"


class EnergyStream(RecognizerStream):
    """Says "utterance N" whenever the energy VAD closes a speech segment."""

    def __init__(self):
        self.vad, self.n, self.t, self.rest = EnergyVad(), 0, 0.0, b""

    def accept(self, pcm):
        data, out = self.rest + pcm, []
        k = len(data) // 320 * 320
        self.rest = data[k:]
        for off in range(0, k, 320):
            self.t += 0.02
            if self.vad.update(pcm16_to_array(data[off:off + 320])) == "end":
                self.n += 1
                out.append(TranscriptEvent(f"第{self.n}句话", True, 1.0, self.t - 1, self.t))
        return out

    def flush(self):
        return []


class EnergyRecognizer(SpeechRecognizer):
    def load(self):
        pass

    def open_stream(self):
        return EnergyStream()


class ToneSynth(SpeechSynthesizer):
    engine = "tone"

    def __init__(self, seconds):
        super().__init__("sine")
        self.seconds = seconds

    def render(self, text):
        n = int(self.seconds.get(text, 0.5) * 8000)
        return array_to_mulaw(np.sin(2 * np.pi * 440 * np.arange(n) / 8000) * 6000)


class EchoHandler:
    def __init__(self, opening):
        self.opening, self.handled, self.deliveries, self.closed = opening, [], [], None
        self.params = None

    async def open(self):
        return [self.opening]

    async def handle(self, event):
        self.handled.append(event.text)
        return [Reply("收到", 100 + len(self.handled))]

    async def record_delivery(self, seq, mark):
        self.deliveries.append(seq)

    async def record_interruption(self, seq, played_ms):
        self.deliveries.append(("interrupted", seq))

    async def close(self, reason):
        self.closed = reason

    @property
    def ended(self):
        return False


async def _call_through_server(recognizer, synth, handler, **phone):
    async def endpoint(ws):
        async def recv():
            try:
                return await ws.recv()
            except Exception:
                return None

        async def make_call(start, sink):
            handler.params = start.custom_parameters
            return VoiceCall(handler, recognizer, synth, sink, CallConfig())

        await serve_media_stream(recv, ws.send, make_call)

    async with serve(endpoint, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        return await run_softphone(f"ws://127.0.0.1:{port}/ws/media", "L001", **phone)


def test_softphone_conversation_with_marks_and_recording(tmp_path):
    handler = EchoHandler(Reply("opening", 1, uninterruptible=True))
    out = tmp_path / "agent.wav"
    summary = asyncio.run(asyncio.wait_for(_call_through_server(
        EnergyRecognizer(), ToneSynth({"opening": 0.6, "收到": 0.4}), handler,
        wav_path=[CLIPS / "zh_hello.wav"], out_wav=out, idle_s=0.8, reply_wait_s=6), 30))
    assert handler.params == {"loan_id": "L001"}
    assert len(handler.handled) == 1  # 喂，(pause) 你好: one turn
    assert handler.handled[0].startswith("第1句话")
    assert handler.deliveries == [1, 101]
    assert len(summary["marks_echoed"]) == 2 and summary["clears"] == 0
    assert handler.closed == "caller_hangup"
    agent, rate = read_wav(out)
    assert rate == 8000 and np.abs(agent).max() > 1000
    assert summary["agent_audio_s"] >= 0.9


def test_softphone_honours_clear_on_barge_in(tmp_path):
    handler = EchoHandler(Reply("long opening", 1))
    summary = asyncio.run(asyncio.wait_for(_call_through_server(
        EnergyRecognizer(), ToneSynth({"long opening": 4.0, "收到": 0.3}), handler,
        wav_path=[CLIPS / "zh_identity.wav"], out_wav=tmp_path / "a.wav", idle_s=0.8,
        wait_for_agent=False, reply_wait_s=6), 30))
    assert summary["clears"] == 1
    assert ("interrupted", 1) in handler.deliveries
    assert summary["agent_audio_s"] < 3.5  # the 4 s opening was cut short
    assert handler.handled and handler.handled[0].startswith("第1句话")


@pytest.mark.model
@pytest.mark.e2e
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_mandarin_call_with_whisper_and_espeak(tmp_path):
    from voice.asr.whisper import WhisperRecognizer, assemble_whisper_base
    from voice.tts.base import PromptCache
    from voice.tts.espeak import EspeakSynthesizer

    asr = WhisperRecognizer(assemble_whisper_base(tmp_path / "wb"))
    asr.load()
    tts = EspeakSynthesizer(cache=PromptCache(tmp_path / "tts"))
    handler = EchoHandler(Reply("您好，本次通话会被录音。", 1, uninterruptible=True))
    summary = asyncio.run(asyncio.wait_for(_call_through_server(
        asr, tts, handler, wav_path=[CLIPS / "zh_promise.wav"],
        out_wav=tmp_path / "agent.wav", idle_s=1.0, reply_wait_s=15), 90))
    print("\nrecognised:", handler.handled, summary)
    assert handler.handled == ["我明天还三千块。"] or "三千" in handler.handled[0]
    assert handler.deliveries == [1, 101]
    assert summary["agent_audio_s"] > 2.0 and len(summary["marks_echoed"]) == 2
