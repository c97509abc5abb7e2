"""Label vocabulary shared by language understanding, dialogue and storage.

The ids are the public contract (`spec/nlu-labels.md`): never rename one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Intent(StrEnum):
    GREETING = "greeting"
    CONFIRM_IDENTITY = "confirm_identity"
    WRONG_PARTY = "wrong_party"
    ASK_BALANCE = "ask_balance"
    ASK_DUE_DATE = "ask_due_date"
    ASK_PAYMENT_METHOD = "ask_payment_method"
    ASK_FEES = "ask_fees"
    ASK_EARLY_SETTLEMENT = "ask_early_settlement"
    ASK_CREDIT_IMPACT = "ask_credit_impact"
    PROMISE_TO_PAY = "promise_to_pay"
    CLAIM_PAID = "claim_paid"
    REQUEST_EXTENSION = "request_extension"
    REQUEST_INSTALLMENT = "request_installment"
    REQUEST_WAIVER = "request_waiver"
    HARDSHIP = "hardship"
    DISPUTE = "dispute"
    REFUSE_TO_PAY = "refuse_to_pay"
    STOP_CONTACT = "stop_contact"
    COMPLAINT = "complaint"
    REQUEST_HUMAN = "request_human"
    CALLBACK_LATER = "callback_later"
    AFFIRM = "affirm"
    DENY = "deny"
    ABUSE = "abuse"
    OTHER = "other"


class Willingness(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    REFUSE = "refuse"
    NONE = "none"


class EntityType(StrEnum):
    AMOUNT = "amount"
    DATE = "date"
    CHANNEL = "channel"
    HARDSHIP_REASON = "hardship_reason"


PAYMENT_CHANNELS = ("alipay", "wechat", "bank_card", "bank_transfer", "app")
HARDSHIP_REASONS = (
    "unemployment",
    "illness",
    "business_loss",
    "accident",
    "family",
    "salary_delay",
    "other",
)

# When an utterance carries several intents, the one acted on first (spec priority, highest first).
INTENT_PRIORITY: tuple[Intent, ...] = (
    Intent.STOP_CONTACT,
    Intent.COMPLAINT,
    Intent.DISPUTE,
    Intent.WRONG_PARTY,
    Intent.ABUSE,
    Intent.CLAIM_PAID,
    Intent.HARDSHIP,
    Intent.REFUSE_TO_PAY,
    Intent.REQUEST_EXTENSION,
    Intent.REQUEST_INSTALLMENT,
    Intent.REQUEST_WAIVER,
    Intent.REQUEST_HUMAN,
    Intent.PROMISE_TO_PAY,
    Intent.ASK_BALANCE,
    Intent.ASK_DUE_DATE,
    Intent.ASK_PAYMENT_METHOD,
    Intent.ASK_FEES,
    Intent.ASK_EARLY_SETTLEMENT,
    Intent.ASK_CREDIT_IMPACT,
    Intent.CALLBACK_LATER,
    Intent.CONFIRM_IDENTITY,
    Intent.AFFIRM,
    Intent.DENY,
    Intent.GREETING,
    Intent.OTHER,
)


@dataclass(frozen=True)
class Entity:
    """One entity span; `start`/`end` are character offsets into the original text."""

    type: str
    text: str
    start: int
    end: int
    value: float | str

    def as_dict(self) -> dict[str, object]:
        return {
            "type": self.type,
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "value": self.value,
        }


@dataclass(frozen=True)
class NluResult:
    """What language understanding made of one borrower utterance."""

    intent: Intent
    intent_confidence: float
    willingness: Willingness
    willingness_confidence: float
    entities: tuple[Entity, ...] = ()
    redacted_text: str = ""
    truncated: bool = False
    model: str = ""
    extra: dict[str, object] = field(default_factory=dict)

    def first(self, entity_type: str) -> Entity | None:
        return next((e for e in self.entities if e.type == entity_type), None)

    def as_dict(self) -> dict[str, object]:
        return {
            "intent": self.intent.value,
            "intent_confidence": round(self.intent_confidence, 4),
            "willingness": self.willingness.value,
            "willingness_confidence": round(self.willingness_confidence, 4),
            "entities": [e.as_dict() for e in self.entities],
            "redacted_text": self.redacted_text,
            "truncated": self.truncated,
        }
