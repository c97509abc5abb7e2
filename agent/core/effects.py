"""Typed effects: what a turn changes in the world, persisted by the store in one transaction."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Effect:
    @property
    def kind(self) -> str:
        return _KINDS[type(self)]

    @property
    def data(self) -> dict[str, Any]:
        return asdict(self)

    def to_dict(self) -> dict[str, Any]:
        return {"effect": self.kind, **asdict(self)}


@dataclass(frozen=True)
class RecordPromise(Effect):
    """A stated promise, stored at once; a new one cancels the conversation's earlier one."""

    amount: str  # Decimal cents as text (JSON-safe)
    due_date: str  # ISO date
    confirmed: bool = False
    plan: str = "promise"  # promise | extension | installment | waiver
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ConfirmPromise(Effect):
    """The read-back was agreed: the conversation's live promise becomes confirmed."""


@dataclass(frozen=True)
class CancelPromise(Effect):
    reason: str = "superseded"


@dataclass(frozen=True)
class Restrict(Effect):
    reason: str  # cease_requested | disputed | wrong_number | vulnerable_hold
    channel: str = "all"  # voice | sms | chat | all


@dataclass(frozen=True)
class Flag(Effect):
    flag: str
    note: str = ""


@dataclass(frozen=True)
class PauseLoan(Effect):
    reason: str


@dataclass(frozen=True)
class SetAbility(Effect):
    ability: str


@dataclass(frozen=True)
class Callback(Effect):
    date: str | None = None  # ISO date in the borrower's timezone
    part: str | None = None  # morning | noon | afternoon | evening
    hour: int | None = None
    phrase: str = ""


@dataclass(frozen=True)
class HandOff(Effect):
    note: str = ""


_KINDS: dict[type, str] = {RecordPromise: "promise", ConfirmPromise: "confirm_promise",
                           CancelPromise: "cancel_promise", Restrict: "restrict", Flag: "flag",
                           PauseLoan: "pause_loan", SetAbility: "ability", Callback: "callback",
                           HandOff: "handoff"}
