"""espeak-ng synthesiser: robotic but licence-clean, fast, and installable from Debian.

On Debian's espeak-ng 1.51 the usable Mandarin voice is ``cmn-latn-pinyin``, which reads
pinyin with tone numbers (the plain ``cmn`` voice reads tone digits aloud), so Chinese text is
converted with ``pypinyin`` first; Arabic numerals become Chinese numerals (``cn2an``) so
amounts are read the Chinese way.
"""

from __future__ import annotations

import re
import shutil
import subprocess

from voice.audio import PHONE_RATE, array_to_mulaw, read_wav_bytes, resample
from voice.tts.base import PromptCache, SpeechSynthesizer, TtsError

_PUNCT = {"，": ",", "、": ",", "；": ",", "：": ",", "。": ".", "！": ".", "？": "?",
          "…": ".", "（": ",", "）": ","}


def _numbers_to_chinese(text: str) -> str:
    try:
        import cn2an
    except ImportError:
        return text
    try:
        return cn2an.transform(text, "an2cn")
    except Exception:  # cn2an rejects some mixed strings; reading digits is acceptable
        return text


# In collections 还 is nearly always huán (repay); pypinyin's phrase table misses these.
_HUAN_PHRASES = ("还款", "还贷", "应还", "已还", "待还", "未还", "还钱", "还清", "还上", "还完", "先还", "再还",
                 "分期还", "按时还", "尽快还", "能还", "会还", "要还", "想还", "去还", "来还")
_phrases_loaded = False


def _load_phrases() -> None:
    global _phrases_loaded
    if _phrases_loaded:
        return
    from pypinyin import Style, load_phrases_dict, pinyin

    table = {}
    for phrase in _HUAN_PHRASES:
        syl = [p[0] for p in pinyin(phrase, style=Style.TONE)]
        table[phrase] = [[("huán" if ch == "还" else s)] for ch, s in zip(phrase, syl, strict=True)]
    load_phrases_dict(table)
    _phrases_loaded = True


def to_pinyin(text: str) -> str:
    """汉字 → "han4 zi4" with tone numbers (neutral tone 5), punctuation kept as pauses."""
    try:
        from pypinyin import Style, lazy_pinyin
    except ImportError as exc:
        raise TtsError("the `pypinyin` package is needed for the cmn-latn-pinyin voice") from exc
    _load_phrases()
    text = _numbers_to_chinese(text)
    for zh, ascii_ in _PUNCT.items():
        text = text.replace(zh, f" {ascii_} ")
    parts = lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True,
                        errors=lambda s: list(s))
    out = " ".join(p.strip() for p in parts if p.strip())
    return re.sub(r"\s+([,.?])", r"\1", out)


class EspeakSynthesizer(SpeechSynthesizer):
    engine = "espeak-ng"

    def __init__(self, voice: str = "cmn-latn-pinyin", cache: PromptCache | None = None,
                 speed_wpm: int = 150, executable: str = "espeak-ng", timeout_s: float = 20.0
                 ) -> None:
        super().__init__(voice=f"{voice}@{speed_wpm}", cache=cache)
        exe = shutil.which(executable)
        if exe is None:
            raise TtsError(f"`{executable}` not found; install it (apt-get install -y espeak-ng)")
        self.executable = exe
        self.espeak_voice = voice
        self.speed_wpm = speed_wpm
        self.timeout_s = timeout_s

    def render(self, text: str) -> bytes:
        spoken = to_pinyin(text) if "pinyin" in self.espeak_voice else text
        try:
            proc = subprocess.run(
                [self.executable, "-v", self.espeak_voice, "-s", str(self.speed_wpm),
                 "--stdout", spoken], capture_output=True, timeout=self.timeout_s, check=True)
        except subprocess.CalledProcessError as exc:
            raise TtsError(f"espeak-ng failed: {exc.stderr.decode(errors='replace')}") from exc
        except subprocess.TimeoutExpired as exc:
            raise TtsError("espeak-ng timed out") from exc
        samples, rate = read_wav_bytes(proc.stdout)
        return array_to_mulaw(resample(samples, rate, PHONE_RATE))
