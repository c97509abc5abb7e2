"""Learned endpointing: Silero VAD + Smart Turn, with recognition overlapping the turn decision.

The VAD and Smart Turn are the real models; the decode is counted, not run (Whisper's own
accuracy is tested in test_asr_whisper_engine.py), so each test shows *when* a final comes out
and how many decodes it cost.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voice.asr import whisper as W
from voice.audio import PHONE_RATE, read_wav, resample
from voice.smart_turn import SmartTurn, available
from voice.vad import SileroVad

CLIPS = Path(__file__).parent / "clips"
pytestmark = pytest.mark.skipif(not available(), reason="pipecat-ai wheel (Smart Turn) missing")


def speech(name: str = "zh_promise.wav") -> np.ndarray:
    audio, rate = read_wav(CLIPS / name)
    return resample(audio, rate, PHONE_RATE)


def silence(seconds: float) -> np.ndarray:
    noise = np.random.default_rng(0).normal(0, 20, int(seconds * PHONE_RATE))
    return noise.astype(np.int16)  # a line is never digital zero


class FixedTurn:
    def __init__(self, probability: float) -> None:
        self.p = probability
        self.calls = 0

    def probability(self, audio_16k: np.ndarray) -> float:
        self.calls += 1
        return self.p


class CountingWhisper(W.WhisperRecognizer):
    """The real stream logic around a decode that is counted instead of run."""

    def __init__(self, turn: FixedTurn | None, heard: str = "我明天还三千块。",
                 **kw: object) -> None:
        super().__init__(Path("unused"), **kw)  # type: ignore[arg-type]
        self._turn = turn  # type: ignore[assignment]
        self.heard = heard
        self.decodes: list[float] = []

    def load(self) -> None:
        pass

    def transcribe(self, audio8k: np.ndarray) -> tuple[str, float]:
        self.decodes.append(len(audio8k) / PHONE_RATE)
        return self.heard, 0.9


def run(rec: CountingWhisper, *pieces: np.ndarray) -> list[tuple[float, str]]:
    """Feed 20 ms frames; (audio time of each final, its text)."""
    stream = rec.open_stream()
    audio = np.concatenate(pieces)
    out = []
    for i in range(0, len(audio), 160):
        for ev in stream.accept(audio[i:i + 160].tobytes()):
            out.append(((i + 160) / PHONE_RATE, ev.text))
    for ev in stream.flush():
        out.append((len(audio) / PHONE_RATE, ev.text))
    return out


def test_a_finished_caller_is_answered_200_ms_into_the_pause() -> None:
    rec = CountingWhisper(FixedTurn(0.9))
    clip = speech()
    finals = run(rec, silence(0.5), clip, silence(2.0))
    end_of_speech = 0.5 + len(clip) / PHONE_RATE
    assert len(finals) == 1 and len(rec.decodes) == 1
    assert 0.15 <= finals[0][0] - end_of_speech <= 0.45  # was 0.6 s of silence, then decoding


def test_an_unfinished_caller_gets_more_time_and_the_held_decode_is_reused() -> None:
    turn = FixedTurn(0.1)
    rec = CountingWhisper(turn, max_pause_s=1.0)
    clip = speech()
    finals = run(rec, silence(0.5), clip, silence(2.5))
    end_of_speech = 0.5 + len(clip) / PHONE_RATE
    assert len(finals) == 1 and turn.calls == 1
    assert len(rec.decodes) == 1  # decoded during the pause, not again at its end
    assert 0.9 <= finals[0][0] - end_of_speech <= 1.3


@pytest.mark.parametrize("heard", ["我下周三发了工资就", "我下周三发了", "那个，"])
def test_a_transcript_left_open_waits_even_when_the_audio_sounds_finished(heard: str) -> None:
    rec = CountingWhisper(FixedTurn(0.9), heard=heard, max_pause_s=1.0)
    clip = speech()
    finals = run(rec, silence(0.5), clip, silence(2.5))
    assert len(finals) == 1 and len(rec.decodes) == 1
    assert finals[0][0] - (0.5 + len(clip) / PHONE_RATE) >= 0.9


def test_speech_after_a_thinking_pause_discards_the_held_decode() -> None:
    rec = CountingWhisper(FixedTurn(0.1), max_pause_s=1.0)
    clip = speech()
    finals = run(rec, silence(0.5), clip, silence(0.6), clip, silence(2.5))
    assert len(finals) == 1  # one utterance spanning both parts
    assert rec.decodes[-1] > 2 * len(clip) / PHONE_RATE  # the final covers both parts
    assert len(rec.decodes) == 2  # the discarded speculation and the final


def test_energy_endpointing_keeps_the_fixed_silence() -> None:
    rec = CountingWhisper(None, endpointing="energy", min_silence_s=0.6)
    clip = speech()
    finals = run(rec, silence(0.5), clip, silence(2.0))
    assert len(finals) == 1
    learned = run(CountingWhisper(FixedTurn(0.9)), silence(0.5), clip, silence(2.0))
    assert finals[0][0] - learned[0][0] >= 0.25  # the silence the learned decision saves
    assert not rec.decides_end_of_turn


def test_silero_hears_speech_not_line_noise() -> None:
    vad = SileroVad(end_s=0.3)
    changes = []
    audio = np.concatenate([silence(1.0), speech(), silence(1.0)])
    for i in range(0, len(audio), 160):
        change = vad.update(audio[i:i + 160])
        if change:
            changes.append((round(i / PHONE_RATE, 2), change))
    assert [c for _, c in changes] == ["start", "end"]
    assert 0.9 <= changes[0][0] <= 1.4


def test_smart_turn_scores_audio_between_0_and_1() -> None:
    p = SmartTurn().probability(resample(speech(), PHONE_RATE, 16000))
    assert 0.0 <= p <= 1.0


def test_smart_turn_tells_finished_from_cut_off_mandarin_phone_speech(tmp_path: Path) -> None:
    """Held-out clips (two synthetic voices, 8 kHz μ-law; tests/voice/turn_clips): finished
    utterances are heard as finished, and cut-off ones score lower on the whole. Measured by
    the evaluation script in a process of its own: 160 onnxruntime runs in the test process
    changed Vosk's (Kaldi's) results in later tests."""
    import json
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "turn.json"
    subprocess.run([sys.executable, str(root / "scripts" / "eval_turn.py"), "--audio-only",
                    "--json", str(out)], check=True, capture_output=True, timeout=300)
    report = json.loads(out.read_text())
    finished, total = map(int, report["all"]["complete_heard_finished"].split("/"))
    assert total == 80 and finished >= 68
    rows = report["clips"]
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    assert mean([r["p"] for r in rows if r["complete"]]) - mean(
        [r["p"] for r in rows if not r["complete"]]) >= 0.15
