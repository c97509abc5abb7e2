"""One money type and one formatting path for every yuan the agent says or stores.

Figures come from the position engine (exact Decimals) and are rounded half up to the cent
once, here, at the edge: never re-derived by subtraction of already rounded figures, never
rounded twice. ``yuan_text`` is what chat shows, ``yuan_speech`` what the voice channel says.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")
ZERO = Decimal(0)

__all__ = ["CENT", "ZERO", "cents", "parse_cents", "fraction_of", "yuan_speech", "yuan_text"]


def cents(value: Decimal | int | float | str) -> Decimal:
    """The amount rounded half up to the cent (floats go through their shortest repr)."""
    if not isinstance(value, Decimal):
        value = Decimal(str(value))
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def parse_cents(value: object) -> Decimal | None:
    """A stored or typed amount back to Decimal cents; None when it is not a number."""
    try:
        return cents(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return None


def fraction_of(value: Decimal, numerator: int, denominator: int) -> Decimal:
    """A share of an exact figure (一半 = 1/2), rounded once."""
    return cents(value * numerator / denominator)


def yuan_text(value: Decimal | int | float | str) -> str:
    """Chat form: 1157.25, 3000 (no trailing .00), never more than two decimals."""
    text = f"{cents(value):.2f}"
    return text[:-3] if text.endswith(".00") else text


_DIGITS = "零一二三四五六七八九"
_UNITS = ("", "十", "百", "千")


def _below_10k(n: int) -> str:
    out = []
    zero = False
    for power in (3, 2, 1, 0):
        digit = n // 10**power % 10
        if digit == 0:
            zero = bool(out)
            continue
        if zero:
            out.append("零")
            zero = False
        out.append(_DIGITS[digit] + _UNITS[power])
    return "".join(out)


def _integer_speech(n: int) -> str:
    if n == 0:
        return "零"
    groups = []
    for unit in ("", "万", "亿"):
        groups.append((n % 10_000, unit))
        n //= 10_000
        if n == 0:
            break
    parts: list[str] = []
    need_zero = False
    for value, unit in reversed(groups):
        if value == 0:
            need_zero = bool(parts)
            continue
        if parts and (need_zero or value < 1000):
            parts.append("零")
        parts.append(_below_10k(value) + unit)
        need_zero = False
    text = "".join(parts)
    return text[1:] if text.startswith("一十") else text


def yuan_speech(value: Decimal | int | float | str) -> str:
    """Speech form for the voice channel: 1110.53 → 一千一百一十元五角三分."""
    amount = cents(value)
    sign = "负" if amount < 0 else ""
    amount = abs(amount)
    whole = int(amount)
    jiao, fen = divmod(int((amount - whole) * 100), 10)
    text = sign + _integer_speech(whole) + "元"
    if jiao:
        text += _DIGITS[jiao] + "角"
    if fen:
        text += ("零" if not jiao and whole else "") + _DIGITS[fen] + "分"
    if not jiao and not fen:
        text += "整"
    return text
