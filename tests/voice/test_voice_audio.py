"""μ-law codec, resampling, framing, energy and WAV helpers."""

import wave
from pathlib import Path

import numpy as np
import pytest

from voice import audio as A


def test_mulaw_decode_table_matches_g711_reference_points():
    assert A.MULAW_DECODE_TABLE[0xFF] == 0
    assert A.MULAW_DECODE_TABLE[0x7F] == 0
    assert A.MULAW_DECODE_TABLE[0x00] == -32124
    assert A.MULAW_DECODE_TABLE[0x80] == 32124


def test_mulaw_roundtrip_is_exact_on_codewords_and_close_on_pcm():
    codes = bytes(range(256))
    assert A.pcm16_to_mulaw(A.mulaw_to_pcm16(codes)).replace(b"\x7f", b"\xff") == \
        codes.replace(b"\x7f", b"\xff")  # 0x7F is negative zero, encodes back as 0xFF
    x = np.arange(-32768, 32768, 7, dtype=np.int16)
    y = A.pcm16_to_array(A.mulaw_to_pcm16(A.pcm16_to_mulaw(x.astype("<i2").tobytes())))
    err = np.abs(y.astype(int) - x.astype(int))
    assert np.all(err <= np.maximum(8, np.abs(x.astype(int)) // 16))  # log quantiser: ≤ ~6 %


def test_encode_rejects_odd_length():
    with pytest.raises(ValueError):
        A.pcm16_to_mulaw(b"\x00\x01\x02")


def _sine(freq, rate, seconds=1.0, amp=10000):
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * freq * t) * amp).astype(np.int16)


def test_resample_8k_to_16k_keeps_speech_band_and_length():
    x = _sine(1000, 8000)
    y = A.resample(x, 8000, 16000)
    assert len(y) == 16000
    assert A.rms(y) == pytest.approx(A.rms(x), rel=0.02)
    spec = np.abs(np.fft.rfft(y.astype(float)))
    assert np.argmax(spec) == 1000  # 1 Hz bins over one second


def test_resample_16k_to_8k_removes_aliases():
    above = _sine(6000, 16000)  # would fold to 2 kHz without the anti-alias filter
    assert A.rms(A.resample(above, 16000, 8000)) < 0.01 * A.rms(above)
    inband = _sine(1000, 16000)
    assert A.rms(A.resample(inband, 16000, 8000)) == pytest.approx(A.rms(inband), rel=0.02)


def test_streaming_resampler_matches_one_shot():
    x = np.random.default_rng(0).integers(-3000, 3000, 8000).astype(np.int16)
    r1, r2 = A.Resampler(8000, 16000), A.Resampler(8000, 16000)
    chunked = np.concatenate([r1.process(x[i:i + 160]) for i in range(0, len(x), 160)])
    assert np.allclose(chunked, r2.process(x), atol=1e-3)


def test_resample_odd_ratio():
    y = A.resample(_sine(440, 22050), 22050, 8000)
    assert len(y) == 8000
    assert A.rms(y) == pytest.approx(A.rms(_sine(440, 22050)), rel=0.03)


def test_frames_pad_and_drop():
    data = bytes(range(200))
    fs = list(A.frames(data))
    assert [len(f) for f in fs] == [160, 160]
    assert fs[1][40:] == bytes([A.MULAW_SILENCE]) * 120
    assert len(list(A.frames(data, pad=None))) == 1


def test_rms_and_vad():
    assert A.rms(np.zeros(160, np.int16)) == 0.0
    assert A.rms(_sine(440, 8000)) == pytest.approx(10000 / 32768 / np.sqrt(2), rel=0.01)
    vad = A.EnergyVad()
    quiet, loud = np.zeros(160, np.int16), _sine(300, 8000, 0.02, 3000)
    changes = [vad.update(quiet) for _ in range(10)] + [vad.update(loud) for _ in range(5)]
    assert changes.count("start") == 1 and vad.in_speech
    changes = [vad.update(quiet) for _ in range(15)]
    assert changes.count("end") == 1 and not vad.in_speech


def test_wav_roundtrip_and_recorder(tmp_path):
    x = _sine(440, 16000, 0.5)
    p = A.write_wav(tmp_path / "a.wav", x, 16000)
    y, rate = A.read_wav(p)
    assert rate == 16000 and np.array_equal(x, y)
    mu = A.wav_to_mulaw_8k(p)
    assert len(mu) == 4000
    rec = A.WavRecorder(tmp_path / "r.wav")
    rec.write_mulaw(mu[:1600])
    rec.pad_to(0.5)
    rec.close()
    z, rate = A.read_wav(tmp_path / "r.wav")
    assert rate == 8000 and len(z) == 4000


def test_agent_recordings_carry_the_ai_content_label(tmp_path: Path) -> None:
    from voice.audio import WavRecorder, ai_content_label, read_wav_label

    labelled = WavRecorder(tmp_path / "agent.wav", label={**ai_content_label("某消费金融"),
                                                          "ContentID": "call-1"})
    labelled.write_pcm16(b"\x01\x00" * 8000)
    labelled.close()
    plain = WavRecorder(tmp_path / "caller.wav")
    plain.write_pcm16(b"\x01\x00" * 8000)
    plain.close()
    label = read_wav_label(tmp_path / "agent.wav")
    assert label == {**ai_content_label("某消费金融"), "ContentID": "call-1"}
    assert read_wav_label(tmp_path / "caller.wav") is None
    with wave.open(str(tmp_path / "agent.wav")) as w:  # the audio reads as before
        assert w.getnframes() == 8000 and w.readframes(2) == b"\x01\x00\x01\x00"
    riff_size = int.from_bytes((tmp_path / "agent.wav").read_bytes()[4:8], "little")
    assert riff_size == (tmp_path / "agent.wav").stat().st_size - 8
