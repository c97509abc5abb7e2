"""Text cleaning, model-side normalisation and training-time augmentation.

Cleaning keeps character offsets meaningful for callers (it only removes control
characters); normalisation is what every classifier sees, so training and inference
share exactly one definition of it.
"""

from __future__ import annotations

import random
import re
import unicodedata

MAX_CHARS = 2000

_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\ufeff]")
_SPACE_RE = re.compile(r"\s+")
_PUNCT_RE = re.compile(r"[\s,.!?;:~，。！？；：、…“”\"'‘’（）()\[\]【】《》<>~～\-—_·]+")


def strip_control(text: str) -> str:
    """Remove control / zero-width characters (tabs and newlines become spaces)."""
    text = text.replace("\t", " ").replace("\r", " ").replace("\n", " ")
    return _CONTROL_RE.sub("", text)


def normalize(text: str) -> str:
    """Model-side normalisation: NFKC (full-width → half-width), lower case, single spaces."""
    text = unicodedata.normalize("NFKC", strip_control(text)).lower()
    return _SPACE_RE.sub(" ", text).strip()


def is_blank(text: str) -> bool:
    return not strip_control(text).strip()


# --- augmentation ----------------------------------------------------------------------------

# ASR-style homophone / near-homophone confusions seen in Mandarin speech recognition output.
HOMOPHONES: dict[str, tuple[str, ...]] = {
    "还": ("换", "环"),
    "钱": ("前", "潜"),
    "是": ("事", "市"),
    "在": ("再",),
    "再": ("在",),
    "号": ("好",),
    "月": ("约",),
    "息": ("西", "系"),
    "期": ("其", "七"),
    "款": ("宽",),
    "诉": ("速",),
    "催": ("吹",),
    "账": ("帐", "张"),
    "信": ("心", "新"),
    "打": ("达",),
    "付": ("副", "富"),
    "宝": ("包", "保"),
    "借": ("接", "姐"),
    "的": ("得", "地"),
    "了": ("啦", "咯"),
    "吗": ("嘛", "么"),
    "那": ("哪",),
    "他": ("她", "它"),
    "她": ("他",),
    "没": ("么",),
    "工": ("公",),
    "资": ("子",),
    "罚": ("发",),
    "利": ("力", "立"),
    "人": ("仁",),
    "征": ("真", "正"),
    "清": ("青", "轻"),
    "号码": ("好吗",),
    "现在": ("先在",),
    "微信": ("威信", "vx", "wx"),
    "支付宝": ("支付包", "zfb"),
    "分期": ("分七", "分其"),
    "投诉": ("头诉",),
    "不": ("步",),
    "想": ("像", "向"),
    "会": ("回", "汇"),
    "后": ("候",),
    "天": ("添",),
    "几": ("机",),
}

_CN_DIGITS = "零一二三四五六七八九"
_NUM_RE = re.compile(r"\d+(?:\.\d+)?")
_CN_NUM_RE = re.compile(r"[零一二两三四五六七八九十百千万]{2,}")
_FILLERS_PRE = ("嗯", "呃", "那个", "就是", "啊", "喂", "哦", "额", "这个")
_FILLERS_POST = ("啊", "吧", "呢", "哈", "嘛", "呀", "哦")


def _an2cn(match: re.Match[str]) -> str:
    try:
        import cn2an

        return str(cn2an.an2cn(match.group(0), "low"))
    except Exception:
        return match.group(0)


def _cn2an(match: re.Match[str]) -> str:
    try:
        import cn2an

        value = cn2an.cn2an(match.group(0), "smart")
        if float(value).is_integer():
            return str(int(value))
        return str(value)
    except Exception:
        return match.group(0)


def _numeral_style(text: str, rng: random.Random) -> str:
    if _NUM_RE.search(text) and rng.random() < 0.5:
        return _NUM_RE.sub(_an2cn, text)
    if _CN_NUM_RE.search(text):
        return _CN_NUM_RE.sub(_cn2an, text)
    return text


def _homophones(text: str, rng: random.Random, rate: float) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        for width in (3, 2, 1):
            key = text[i : i + width]
            if len(key) == width and key in HOMOPHONES and rng.random() < rate:
                out.append(rng.choice(HOMOPHONES[key]))
                i += width
                break
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def augment(text: str, rng: random.Random, noise_chars: str = "") -> str:
    """One random noisy variant of `text`: the speech-recognition and chat noise seen live.

    Applies a random subset of: punctuation removal, homophone swaps, numeral style change,
    character deletion / duplication / random substitution, filler words, spacing.
    """
    t = text
    if rng.random() < 0.6:
        t = _PUNCT_RE.sub("" if rng.random() < 0.7 else " ", t).strip() or t
    if rng.random() < 0.5:
        t = _homophones(t, rng, rate=0.35)
    if rng.random() < 0.3:
        t = _numeral_style(t, rng)
    if len(t) > 3 and rng.random() < 0.35:
        chars = list(t)
        n = max(1, int(len(chars) * 0.08))
        for _ in range(n):
            if len(chars) <= 2:
                break
            op = rng.random()
            j = rng.randrange(len(chars))
            if op < 0.55:
                del chars[j]
            elif op < 0.8:
                chars.insert(j, chars[j])
            elif noise_chars:
                chars[j] = rng.choice(noise_chars)
        t = "".join(chars)
    if rng.random() < 0.2:
        t = rng.choice(_FILLERS_PRE) + ("，" if rng.random() < 0.5 else "") + t
    if rng.random() < 0.15:
        t = t + rng.choice(_FILLERS_POST)
    if rng.random() < 0.05:
        t = " ".join(t)
    return t or text
