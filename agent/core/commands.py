"""Typed commands: what understanding says the borrower's message asks the engine to do.

Understanding (``nlp.commands``) turns each message into several of these; the engine
(``agent.core.engine``) runs them against the flow stack. Modelled on Rasa CALM's command
vocabulary, without an LLM: labels, entities and the conversation context produce them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Channel = Literal["voice", "sms", "chat", "all"]
PartOfDay = Literal["morning", "noon", "afternoon", "evening"]

# Flows a StartFlow may name (validated against the flow YAML at load time too).
FLOW_IDS = ("identity", "promise", "extension", "installment", "waiver", "hardship", "dispute",
            "claim_paid", "cease", "complaint", "callback", "handoff", "third_party",
            "wrong_number", "refusal", "abuse", "goodbye")
# Knowledge topics an Answer may name (the knowledge base in the strategy's templates).
TOPICS = ("balance", "due_date", "payment_method", "fees", "early_settlement", "credit_impact",
          "overdue_status", "payment_history", "robot", "legal", "personal_account",
          "collection_practice", "greeting", "identity_who", "privacy",
          "cannot_change_records")


@dataclass(frozen=True)
class Command:
    """Base: every command knows which clause it came from (for the event log)."""

    clause: str = field(default="", kw_only=True)
    confidence: float = field(default=1.0, kw_only=True)

    @property
    def name(self) -> str:
        return type(self).__name__

    def to_dict(self) -> dict[str, Any]:
        return {"command": self.name, **asdict(self)}


@dataclass(frozen=True)
class StartFlow(Command):
    flow: str
    # A flow that changes collection (dispute, cease…) needs a confident statement; when
    # understanding is not sure it sets ``confirm`` and the engine asks first.
    confirm: bool = False
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SetSlot(Command):
    slot: str
    value: Any


@dataclass(frozen=True)
class CorrectSlot(Command):
    slot: str
    value: Any


@dataclass(frozen=True)
class Answer(Command):
    topic: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Affirm(Command):
    pass


@dataclass(frozen=True)
class Deny(Command):
    slot: str | None = None  # "明天不行": a no to that slot only


@dataclass(frozen=True)
class Cancel(Command):
    pass


@dataclass(frozen=True)
class HandOff(Command):
    reason: str = "borrower asked for a human"


@dataclass(frozen=True)
class Clarify(Command):
    """Nothing usable was understood (or only something ambiguous): ask, do not guess."""

    reason: str = "unclear"
    # A candidate reading to confirm (``dispute``…) when the clause looked like one.
    candidate: str | None = None


@dataclass(frozen=True)
class Goodbye(Command):
    pass


COMMAND_TYPES: dict[str, type[Command]] = {
    c.__name__: c for c in (StartFlow, SetSlot, CorrectSlot, Answer, Affirm, Deny, Cancel,
                            HandOff, Clarify, Goodbye)
}


def command_from_dict(data: dict[str, Any]) -> Command:
    values = dict(data)
    kind = COMMAND_TYPES[values.pop("command")]
    return kind(**values)
