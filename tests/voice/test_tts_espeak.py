"""espeak-ng synthesis to 8 kHz μ-law frames, pinyin conversion and the prompt cache."""

import shutil

import pytest

from voice.audio import FRAME_BYTES_MULAW, mulaw_to_array
from voice.tts.base import PromptCache, TtsError, synthesizer_from_settings
from voice.tts.espeak import EspeakSynthesizer, to_pinyin

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng not installed (apt-get install espeak-ng)")


def test_pinyin_with_tone_numbers_and_collection_readings():
    assert to_pinyin("您好，还款3000元。") == "nin2 hao3, huan2 kuan3 san1 qian1 yuan2."
    assert to_pinyin("还是") == "hai2 shi4"


@needs_espeak
def test_synthesize_gives_mulaw_frames_of_160_bytes(tmp_path):
    tts = EspeakSynthesizer(cache=PromptCache(tmp_path))
    fs = tts.frames("您好，我是智能客服，本次通话将被录音。")
    assert len(fs) > 50  # more than a second of speech
    assert all(len(f) == FRAME_BYTES_MULAW for f in fs)
    samples = mulaw_to_array(b"".join(fs))
    assert abs(samples.astype(int)).max() > 2000  # not silence


@needs_espeak
def test_cache_keyed_by_engine_voice_text(tmp_path, monkeypatch):
    cache = PromptCache(tmp_path)
    tts = EspeakSynthesizer(cache=cache)
    first = tts.synthesize("请问您是张伟本人吗？")
    assert (tts.hits, tts.misses) == (0, 1)
    monkeypatch.setattr(tts, "render", lambda text: pytest.fail("rendered twice"))
    assert tts.synthesize("请问您是张伟本人吗？") == first
    assert tts.hits == 1
    files = list(tmp_path.rglob("*.ulaw"))
    assert len(files) == 1 and files[0].parent.name == "espeak-ng"
    assert cache.key("espeak-ng", "v1", "x") != cache.key("espeak-ng", "v2", "x")
    slow = EspeakSynthesizer(cache=cache, speed_wpm=120)  # another voice setting, another key
    assert slow.prewarm(["请问您是张伟本人吗？"]) == 1


def test_settings_errors(tmp_path):
    with pytest.raises(TtsError, match="unknown HUIKUAN_TTS"):
        synthesizer_from_settings("festival", tmp_path)
    with pytest.raises(TtsError, match="not found"):
        EspeakSynthesizer(executable="no-such-espeak")
