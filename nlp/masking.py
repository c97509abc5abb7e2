"""Masking of personal identifiers before any text is stored or logged (spec: Sensitive data).

Kinds, found in this order so a longer identifier is never eaten as a shorter one:
e-mail (its local part may be digits) → 18-character resident ID → 16–19 digit bank card →
mainland mobile (also +86 / spaced / dashed, and ASR-style Chinese digits) → landline with
area code. Money amounts, dates and short numbers are left alone.

Formats: mobile 138****5678 (separators kept), ID 110105********123X, card
`6222 **** **** 1234` (first 4, last 4, grouped), e-mail z***@example.com, landline
010-****5678. Masked output contains no run of digits that any pattern matches again, so
masking is idempotent.
"""

from __future__ import annotations

import re
from datetime import date

__all__ = ["find_sensitive", "mask_sensitive"]

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
)
# 18-char ID: 6 region + 8 birth date + 3 sequence + check digit/X; optional spaces 6-8-4.
_ID = re.compile(r"(?<![0-9A-Za-z])([1-9]\d{5})[ ]?(\d{8})[ ]?(\d{3}[0-9Xx])(?![0-9A-Za-z])")
# Bank card: 16–19 digits, either contiguous or in groups of 4 separated by one space/dash.
_CARD = re.compile(r"(?<![0-9])(?:\d{16,19}|\d{4}(?:[ -]\d{4}){3}(?:[ -]?\d{1,3})?)(?![0-9])")
_PHONE = re.compile(r"(?<![0-9])(?:(?:\+|00)?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}(?![0-9])")
_CN_D = "零〇一二三四五六七八九幺两"
_CN_PHONE = re.compile(rf"(?<![{_CN_D}])[一幺][三四五六七八九][{_CN_D}]{{9}}(?![{_CN_D}])")
_LANDLINE = re.compile(r"(?<![0-9])(?:\(0\d{2,3}\)|0\d{2,3}-)\d{7,8}(?![0-9])")
_ANY = re.compile(r"[0-9@一幺]")

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def _id_checksum_ok(digits17: str, check: str) -> bool:
    total = sum(int(d) * w for d, w in zip(digits17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == check.upper()


def _plausible_birth(b: str) -> bool:
    try:
        d = date(int(b[:4]), int(b[4:6]), int(b[6:8]))
    except ValueError:
        return False
    return 1900 <= d.year <= 2100


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _is_id(m: re.Match[str]) -> bool:
    """An 18-char run is an ID when its check digit fits or it carries a real birth date.

    A card number of 18 digits can look similar; a valid Luhn sum with no valid ID checksum
    and an impossible birth date sends it to the card pattern instead.
    """
    region, birth, tail = m.group(1), m.group(2), m.group(3)
    if tail[-1] in "Xx":
        return True
    body = region + birth + tail
    if _id_checksum_ok(body[:17], body[17]):
        return True
    return _plausible_birth(birth) and not (body.startswith(("62", "4", "5")) and _luhn_ok(body))


def find_sensitive(text: str) -> list[tuple[str, int, int]]:
    """(kind, start, end) of every identifier in `text`, non-overlapping, sorted by start.

    kind is one of "email", "id", "card", "phone", "landline".
    """
    if not text or not _ANY.search(text):
        return []
    spans: list[tuple[str, int, int]] = []

    def free(a: int, b: int) -> bool:
        return all(b <= s or a >= e for _, s, e in spans)

    for m in _EMAIL.finditer(text):
        spans.append(("email", m.start(), m.end()))
    for m in _ID.finditer(text):
        if _is_id(m) and free(m.start(), m.end()):
            spans.append(("id", m.start(), m.end()))
    for m in _CARD.finditer(text):
        if free(m.start(), m.end()):
            spans.append(("card", m.start(), m.end()))
    for pat in (_PHONE, _CN_PHONE):
        for m in pat.finditer(text):
            if free(m.start(), m.end()):
                spans.append(("phone", m.start(), m.end()))
    for m in _LANDLINE.finditer(text):
        if free(m.start(), m.end()):
            spans.append(("landline", m.start(), m.end()))
    spans.sort(key=lambda t: t[1])
    return spans


def _mask_digit_positions(s: str, keep_head: int, keep_tail: int) -> str:
    """Star every digit except the first `keep_head` and last `keep_tail`; keep separators."""
    idx = [i for i, c in enumerate(s) if c.isdigit()]
    hide = set(idx[keep_head : len(idx) - keep_tail])
    return "".join("*" if i in hide else c for i, c in enumerate(s))


def _mask_one(kind: str, s: str) -> str:
    if kind == "email":
        local, _, domain = s.partition("@")
        return f"{local[0]}***@{domain}"
    if kind == "id":
        body = s.replace(" ", "")
        return body[:6] + "*" * 8 + body[-4:]
    if kind == "card":
        digits = re.sub(r"\D", "", s)
        return f"{digits[:4]} **** **** {digits[-4:]}"
    if kind == "phone":
        if s[0] in "一幺":
            return s[:3] + "****" + s[-4:]
        m = re.match(r"(?:\+|00)?86[ -]?", s)
        head = m.group() if m and len(re.sub(r"\D", "", s)) > 11 else ""
        return head + _mask_digit_positions(s[len(head) :], 3, 4)
    # landline: keep the area code and the last 4 digits
    cut = s.rindex("-") + 1 if "-" in s else s.index(")") + 1
    local = s[cut:]
    return s[:cut] + "*" * (len(local) - 4) + local[-4:]


def mask_sensitive(text: str) -> str:
    """`text` with phone, ID, card and e-mail identifiers masked; idempotent."""
    spans = find_sensitive(text)
    if not spans:
        return text
    out: list[str] = []
    pos = 0
    for kind, a, b in spans:
        out.append(text[pos:a])
        out.append(_mask_one(kind, text[a:b]))
        pos = b
    out.append(text[pos:])
    return "".join(out)
