"""Database tables. API schemas live in ``agent.api.schemas``; tables are never returned directly."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from agent.store.types import ExactDecimal, UTCDateTime


def utcnow() -> datetime:
    return datetime.now(UTC)


def _money() -> Any:
    return Field(sa_column=Column(ExactDecimal(), nullable=False))


class Borrower(SQLModel, table=True):
    __tablename__ = "borrowers"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=100)
    phone: str = Field(max_length=32, index=True)
    timezone: str = Field(default="Asia/Shanghai", max_length=64)
    emergency_contacts: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    # Repayment ability tier set by hardship conversations: normal | hardship.
    ability: str = Field(default="normal", max_length=16)
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime()))


class Loan(SQLModel, table=True):
    __tablename__ = "loans"

    id: str = Field(primary_key=True, max_length=64)
    borrower_id: str = Field(foreign_key="borrowers.id", index=True, max_length=64)
    principal: Decimal = _money()
    annual_rate: Decimal = _money()
    penalty_rate_daily: Decimal = _money()
    disbursed_on: date
    # Collection pause (dispute, vulnerable hold): contact planning skips paused loans.
    paused_reason: str | None = Field(default=None, max_length=32)
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime()))


class Installment(SQLModel, table=True):
    __tablename__ = "installments"
    __table_args__ = (UniqueConstraint("loan_id", "seq", name="uq_installment_loan_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    loan_id: str = Field(foreign_key="loans.id", index=True, max_length=64)
    seq: int
    due_date: date
    principal: Decimal = _money()
    interest: Decimal = _money()
    fee: Decimal = _money()


class Payment(SQLModel, table=True):
    __tablename__ = "payments"

    id: str = Field(primary_key=True, max_length=64)
    loan_id: str = Field(foreign_key="loans.id", index=True, max_length=64)
    amount: Decimal = _money()
    paid_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    channel: str | None = Field(default=None, max_length=32)


class Conversation(SQLModel, table=True):
    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_started", "started_at"),)

    id: str = Field(primary_key=True, max_length=40)
    channel: str = Field(max_length=16)  # chat | voice | sms
    direction: str = Field(default="inbound", max_length=16)
    loan_id: str | None = Field(default=None, foreign_key="loans.id", index=True, max_length=64)
    borrower_id: str = Field(foreign_key="borrowers.id", index=True, max_length=64)
    strategy: str | None = Field(default=None, max_length=80)
    arm: str | None = Field(default=None, max_length=16)  # champion | challenger, at the start
    segment: str | None = Field(default=None, max_length=80)
    state: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    started_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime()))
    ended_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    outcome: str | None = Field(default=None, max_length=32)
    willingness: str | None = Field(default=None, max_length=16)
    flags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    recordings: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    call_id: str | None = Field(default=None, max_length=64, index=True)
    # Quality check of the whole conversation when it ends (agent.policy.qa): 0-100, worst
    # first in the supervisors' QA queue; the scorecard beside it.
    qa_score: int | None = Field(default=None, index=True)
    qa: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class Turn(SQLModel, table=True):
    __tablename__ = "turns"
    __table_args__ = (UniqueConstraint("conversation_id", "seq", name="uq_turn_conv_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: str = Field(foreign_key="conversations.id", index=True, max_length=40)
    seq: int
    speaker: str = Field(max_length=16)  # agent | borrower
    text: str  # always masked before it gets here
    intent: str | None = Field(default=None, max_length=32)
    intent_confidence: float | None = None
    willingness: str | None = Field(default=None, max_length=16)
    entities: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    compliance: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    act: str | None = Field(default=None, max_length=40)
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime()))


class Promise(SQLModel, table=True):
    __tablename__ = "promises"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: str = Field(foreign_key="conversations.id", index=True, max_length=40)
    loan_id: str = Field(foreign_key="loans.id", index=True, max_length=64)
    amount: Decimal = _money()
    due_date: date
    # pending | kept | partially_kept | broken | cancelled
    status: str = Field(default="pending", max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime()))
    # Stored as soon as stated; confirmed once the borrower agrees to the read-back.
    confirmed: bool = False
    plan: str = Field(default="promise", max_length=16)  # promise | extension | installment | waiver
    # When status left "pending" (kept, partially_kept, broken), and what payments covered then.
    resolved_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    paid_at_resolution: Decimal | None = Field(default=None, sa_column=Column(ExactDecimal()))


class Flag(SQLModel, table=True):
    __tablename__ = "flags"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: str | None = Field(default=None, index=True, max_length=40)
    borrower_id: str = Field(index=True, max_length=64)
    loan_id: str | None = Field(default=None, index=True, max_length=64)
    kind: str = Field(max_length=32, index=True)
    note: str = ""
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime()))


class ContactRestriction(SQLModel, table=True):
    """Standing contact rules from conversations: cease per channel, dispute, wrong number…"""

    __tablename__ = "contact_restrictions"

    id: int | None = Field(default=None, primary_key=True)
    borrower_id: str = Field(index=True, max_length=64)
    loan_id: str | None = Field(default=None, index=True, max_length=64)
    kind: str = Field(max_length=32)  # cease_requested | disputed | wrong_number | vulnerable_hold
    channel: str = Field(default="all", max_length=16)
    active: bool = True
    conversation_id: str | None = Field(default=None, max_length=40)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime()))


class ContactConsent(SQLModel, table=True):
    """Prior express consent the lender recorded (e.g. to AI-voice calls, FCC 24-17), per number.

    Tied to the number it was given for: a reassigned or changed number carries no consent."""

    __tablename__ = "contact_consents"
    __table_args__ = (UniqueConstraint("borrower_id", "kind", "phone",
                                       name="uq_consent_borrower_kind_phone"),)

    id: int | None = Field(default=None, primary_key=True)
    borrower_id: str = Field(index=True, max_length=64)
    kind: str = Field(max_length=32)  # ai_voice
    phone: str = Field(max_length=32)
    given_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    source: str | None = Field(default=None, max_length=64)
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime()))


class ContactAttempt(SQLModel, table=True):
    """Every outbound attempt, refused ones included: caps are counted here, across workers."""

    __tablename__ = "contact_attempts"
    __table_args__ = (Index("ix_attempts_borrower_at", "borrower_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    borrower_id: str = Field(max_length=64)
    loan_id: str | None = Field(default=None, max_length=64)
    channel: str = Field(max_length=16)
    direction: str = Field(default="outbound", max_length=16)
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime()))
    # dialing | connected | no_answer | voicemail | unreachable | failed | blocked
    outcome: str = Field(max_length=16)
    reason: str | None = Field(default=None, max_length=40)
    conversation_id: str | None = Field(default=None, max_length=40)
    call_id: str | None = Field(default=None, max_length=64)


class Callback(SQLModel, table=True):
    __tablename__ = "callbacks"

    id: int | None = Field(default=None, primary_key=True)
    borrower_id: str = Field(index=True, max_length=64)
    loan_id: str | None = Field(default=None, max_length=64)
    conversation_id: str | None = Field(default=None, max_length=40)
    at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    note: str = ""
    # The borrower's local day and part of day (morning | noon | afternoon | evening).
    local_date: date | None = None
    part: str | None = Field(default=None, max_length=16)


class ChatSession(SQLModel, table=True):
    """One conversation per chat session token: reconnecting with the token resumes it."""

    __tablename__ = "chat_sessions"

    id: str = Field(primary_key=True, max_length=40)
    borrower_id: str = Field(max_length=64)
    loan_id: str | None = Field(default=None, max_length=64)
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    conversation_id: str | None = Field(default=None, max_length=40)


class MediaToken(SQLModel, table=True):
    """A single-use credential for one ``/ws/media`` stream about one loan (contract v1.1).

    Only the token's SHA-256 is stored: a database reader cannot replay a live token.
    """

    __tablename__ = "media_tokens"

    token_hash: str = Field(primary_key=True, max_length=64)
    loan_id: str = Field(max_length=64, index=True)
    direction: str = Field(default="outbound", max_length=16)  # outbound | inbound
    # The outbound attempt it was issued with (calls the service placed itself), if any.
    attempt_id: int | None = None
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class ConversationEvent(SQLModel, table=True):
    """Append-only log of a conversation: message received, commands, slots set, effects
    applied, utterance sent. ``conversations.state`` is a cache of what this log implies."""

    __tablename__ = "conversation_events"
    __table_args__ = (UniqueConstraint("conversation_id", "seq", name="uq_event_conv_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: str = Field(foreign_key="conversations.id", index=True, max_length=40)
    seq: int
    kind: str = Field(max_length=32)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime()))
