"""Typed turn inputs: what arrived from the borrower's side, whatever the channel."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Text:
    text: str
    meta: dict[str, Any] = field(default_factory=dict)  # asr_confidence, timings…


@dataclass(frozen=True)
class Dtmf:
    digit: str


@dataclass(frozen=True)
class NoInput:
    count: int = 1


@dataclass(frozen=True)
class CallOpened:
    pass


TurnInput = Text | Dtmf | NoInput | CallOpened


def from_legacy(text: str, meta: dict[str, Any] | None) -> TurnInput:
    """The meta-dict form voice/ and the websocket still send ({"dtmf": "1"}, no-input)."""
    meta = dict(meta or {})
    if meta.get("dtmf"):
        return Dtmf(str(meta["dtmf"]))
    if meta.get("no_input"):
        return NoInput(int(meta.get("no_input") or 1))
    return Text(text, meta)
