"""Answering-machine and operator-message detection at the start of a call.

When the network answers instead of the borrower (关机, 空号, 无法接通) or a voicemail greeting
plays, the agent must end the call and say nothing about the debt. Detection uses the
recognised text, matched fuzzily because ASR on telephone audio garbles characters
(拨打 → 播打), and timing: a greeting that talks for many seconds without a pause is a machine,
since people answer with a short "喂？".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

VOICEMAIL = "voicemail"
UNREACHABLE = "unreachable"

ZH_PHRASES: dict[str, str] = {
    "您拨打的电话已关机": UNREACHABLE,
    "您拨打的用户已关机": UNREACHABLE,
    "暂时无法接通": UNREACHABLE,
    "正在通话中": UNREACHABLE,
    "是空号": UNREACHABLE,
    "不在服务区": UNREACHABLE,
    "无人接听": UNREACHABLE,
    "已停机": UNREACHABLE,
    "请稍后再拨": UNREACHABLE,
    "请在提示音后留言": VOICEMAIL,
    "嘀声后留言": VOICEMAIL,
    "语音信箱": VOICEMAIL,
    "暂时无法接听": VOICEMAIL,
}
EN_PHRASES: dict[str, str] = {
    "the number you have dialed is not available": UNREACHABLE,
    "the number you dialed is switched off": UNREACHABLE,
    "the subscriber you have dialed is powered off": UNREACHABLE,
    "cannot be reached at the moment": UNREACHABLE,
    "the number you have dialed does not exist": UNREACHABLE,
    "the number you are calling is busy": UNREACHABLE,
    "is not in service": UNREACHABLE,
    "no one is available to answer": UNREACHABLE,
    "please try again later": UNREACHABLE,
    "please leave a message after the tone": VOICEMAIL,
    "leave your message after the beep": VOICEMAIL,
    "you have reached the voicemail of": VOICEMAIL,
    "is not available to take your call": VOICEMAIL,
}
_CJK = re.compile(r"[\u3400-\u9fff]")
_NON_CJK_WORD = re.compile(r"[^\u3400-\u9fff]")
_WORD = re.compile(r"[a-z']+")


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    """Longest common subsequence length: characters of a string, or words of a list."""
    prev = [0] * (len(b) + 1)
    for ca in a:
        cur = [0]
        for j, cb in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if ca == cb else max(prev[j], cur[-1]))
        prev = cur
    return prev[-1]


def zh_similarity(text: str, phrase: str) -> float:
    """Best in-order character overlap of ``phrase`` within any window of ``text`` (0..1)."""
    t = _NON_CJK_WORD.sub("", text)
    n = len(phrase)
    if not t:
        return 0.0
    width = n + max(2, n // 3)  # allow a few inserted characters
    best = 0
    for i in range(0, max(1, len(t) - n + 1)):
        best = max(best, _lcs(t[i:i + width], phrase))
        if best == n:
            break
    return best / n


def en_similarity(text: str, phrase: str) -> float:
    words = _WORD.findall(text.lower())
    target = _WORD.findall(phrase)
    if not words or not target:
        return 0.0
    return _lcs(words, target) / len(target)


def _n_words(text: str) -> int:
    """Chinese characters plus Latin words: a rough amount of speech content."""
    return len(_NON_CJK_WORD.sub("", text)) + len(_WORD.findall(text.lower()))


def classify_text(text: str, threshold: float = 0.75) -> str | None:
    """``voicemail`` | ``unreachable`` | None for one recognised utterance (or several)."""
    best: tuple[float, str | None] = (0.0, None)
    if _CJK.search(text):
        for phrase, outcome in ZH_PHRASES.items():
            need = 1.0 if len(phrase) <= 3 else threshold  # short phrases must match exactly
            score = zh_similarity(text, phrase)
            if score >= need and score > best[0]:
                best = (score, outcome)
    if re.search(r"[A-Za-z]", text):
        for phrase, outcome in EN_PHRASES.items():
            score = en_similarity(text, phrase)
            if score >= threshold and score > best[0]:
                best = (score, outcome)
    return best[1]


@dataclass
class VoicemailDetector:
    """Feed the opening seconds of a call; ``outcome`` settles once a rule fires.

    Timing rule: a first speech segment longer than ``long_greeting_s`` with no pause is a
    machine if it also produced at least ``min_greeting_chars`` of text (so a noisy line that
    the energy VAD hears as one long "speech" segment is not mistaken for a greeting), or if
    it runs on past twice that long. ``window_s``: detection stops after this long.
    """

    long_greeting_s: float = 6.0
    window_s: float = 30.0
    threshold: float = 0.75
    min_greeting_chars: int = 8
    outcome: str | None = None
    _speech_start: float | None = None
    _first_end: float | None = None
    _text: str = ""

    def active(self, now: float) -> bool:
        return self.outcome is None and now < self.window_s

    def on_speech_start(self, now: float) -> str | None:
        if self._speech_start is None and now < self.window_s:
            self._speech_start = now
        return None

    def on_speech_end(self, now: float) -> str | None:
        if self._speech_start is not None and self._first_end is None:
            self._first_end = now
            self._check_long_with_text()
        return self.outcome

    @property
    def long_first_segment(self) -> bool:
        return (self._speech_start is not None and self._first_end is not None
                and self._first_end - self._speech_start > self.long_greeting_s)

    def tick(self, now: float) -> str | None:
        """While the first segment goes on, decide once it is far too long for a person."""
        if (self.outcome is None and self._speech_start is not None and self._first_end is None
                and now - self._speech_start > 2 * self.long_greeting_s):
            self.outcome = VOICEMAIL
        return self.outcome

    def _check_long_with_text(self) -> None:
        if (self.outcome is None and self.long_first_segment
                and _n_words(self._text) >= self.min_greeting_chars):
            self.outcome = VOICEMAIL

    def on_text(self, text: str, now: float) -> str | None:
        """Check an utterance, and the opening text so far (phrases split across finals)."""
        if not self.active(now):
            return self.outcome
        self._text += text
        hit = classify_text(text, self.threshold) or classify_text(self._text, self.threshold)
        if hit:
            self.outcome = hit
        self._check_long_with_text()
        return self.outcome
