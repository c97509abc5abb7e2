"""Operator messages and answering machines, from text (with ASR errors) and from audio."""

from pathlib import Path

import numpy as np
import pytest

from voice.voicemail import UNREACHABLE, VOICEMAIL, VoicemailDetector, classify_text

CLIPS = Path(__file__).parent / "clips"


@pytest.mark.parametrize("text, outcome", [
    ("您拨打的电话已关机", UNREACHABLE),
    ("您播打低电话已关机。", UNREACHABLE),  # real Whisper output on a phone-band clip
    ("您播打低电话再时无法接通,请稍后再播。", UNREACHABLE),
    ("对不起，您拨打的用户正在通话中，请稍后再拨", UNREACHABLE),
    ("您拨打的号码是空号", UNREACHABLE),
    ("您拨打的电话不在服务区", UNREACHABLE),
    ("您拨打的电话暂时无人接听", UNREACHABLE),
    ("您好,基主暂时无法接听,请在提示音后留言。", VOICEMAIL),
    ("请在提示因后留言", VOICEMAIL),
    ("Sorry, the number you have dialed is not available. Please try again later.",
     UNREACHABLE),
    ("Hi, you've reached John. Please leave a message after the tone.", VOICEMAIL),
])
def test_operator_and_machine_phrases(text, outcome):
    assert classify_text(text) == outcome


@pytest.mark.parametrize("text", ["喂，你好", "是我，我就是张伟", "我明天还三千块", "我在开会",
                                  "现在不方便，晚点再打", "我没钱", "你打错了", "Hello?",
                                  "我暂时没法还", "我正在开车"])
def test_people_are_not_machines(text):
    assert classify_text(text) is None


def test_phrase_split_across_utterances():
    d = VoicemailDetector()
    assert d.on_text("您拨打的电话", 1.0) is None
    assert d.on_text("已关机", 2.5) == UNREACHABLE


def test_long_uninterrupted_greeting_is_voicemail():
    d = VoicemailDetector(long_greeting_s=6.0)
    d.on_speech_start(0.5)
    assert d.tick(6.6) is None
    d.on_speech_end(7.5)
    assert d.on_text("你好，我是李明，现在有事不方便", 8.5) == VOICEMAIL


def test_endless_first_segment_is_voicemail_even_without_text():
    d = VoicemailDetector(long_greeting_s=6.0)
    d.on_speech_start(0.5)
    assert d.tick(12.4) is None
    assert d.tick(12.6) == VOICEMAIL


def test_long_noise_without_words_is_not_a_greeting():
    d = VoicemailDetector(long_greeting_s=6.0)
    d.on_speech_start(0.5)
    d.on_speech_end(8.0)
    assert d.on_text("嗯", 8.5) is None and d.tick(20.0) is None


def test_short_greeting_then_pause_is_a_person():
    d = VoicemailDetector(long_greeting_s=6.0)
    d.on_speech_start(0.5)
    d.on_speech_end(1.2)
    d.on_speech_start(2.0)  # later speech doesn't count as the greeting
    assert d.tick(20.0) is None and d.outcome is None


def test_detection_window_closes():
    d = VoicemailDetector(window_s=30.0)
    assert d.on_text("请在提示音后留言", 45.0) is None


@pytest.mark.model
def test_operator_clips_through_phone_line_and_whisper(tmp_path_factory):
    from voice.asr.whisper import WhisperRecognizer, assemble_whisper_base
    from voice.audio import mulaw_to_pcm16, wav_to_mulaw_8k

    rec = WhisperRecognizer(assemble_whisper_base(tmp_path_factory.mktemp("d") / "wb"))
    for name, outcome in [("zh_poweroff.wav", UNREACHABLE), ("zh_voicemail.wav", VOICEMAIL)]:
        pcm = np.frombuffer(mulaw_to_pcm16(wav_to_mulaw_8k(CLIPS / name)), dtype="<i2")
        text, _ = rec.transcribe(pcm)
        assert classify_text(text) == outcome, (name, text)
