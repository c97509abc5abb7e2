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
