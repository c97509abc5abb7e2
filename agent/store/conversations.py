"""Conversations, turns, promises, flags and contact restrictions in the database."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlmodel import Session

from agent.core import effects as fx
from agent.core.money import cents
from agent.store.reviews import reviews_for
from agent.store.tables import (
    Borrower,
    Callback,
    ContactRestriction,
    Conversation,
    ConversationEvent,
    Flag,
    Loan,
    Payment,
    Promise,
    Turn,
)

# Where a part of day starts, for a callback's time (borrower's local clock).
PART_HOURS = {"morning": 9, "noon": 12, "afternoon": 14, "evening": 19}


def _mask(text: str) -> str:
    """Every free text is masked at the store boundary, whoever wrote it."""
    from nlp.masking import mask_sensitive

    return mask_sensitive(text or "")


def next_event_seq(session: Session, conversation_id: str) -> int:
    current = session.execute(
        select(func.max(ConversationEvent.seq))
        .where(ConversationEvent.conversation_id == conversation_id)
    ).scalar_one()
    return (current or 0) + 1


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return _mask(value)
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value]
    return value


class EventLog:
    """Appends one conversation's events in the caller's transaction (never updates them)."""

    def __init__(self, session: Session, conversation_id: str, at: datetime) -> None:
        self.session = session
        self.conversation_id = conversation_id
        self.at = at
        self.seq = next_event_seq(session, conversation_id)

    def append(self, kind: str, data: dict[str, Any]) -> None:
        """Every string in the event is masked here, whatever the caller passed: the log is
        kept for years and must never hold a card, phone or ID number."""
        self.session.add(ConversationEvent(conversation_id=self.conversation_id, seq=self.seq,
                                           kind=kind, data=_masked(data), at=self.at))
        self.seq += 1


def next_seq(session: Session, conversation_id: str) -> int:
    current = session.execute(
        select(func.max(Turn.seq)).where(Turn.conversation_id == conversation_id)
    ).scalar_one()
    return (current or 0) + 1


def add_turn(session: Session, conversation_id: str, seq: int, speaker: str, text: str,
             at: datetime, **fields: Any) -> Turn:
    # Every defaulted field is given explicitly: pydantic would otherwise inspect the
    # default factories' signatures on each construction (a measurable cost per turn).
    values: dict[str, Any] = {"entities": [], "compliance": [], "meta": {}, "intent": None,
                              "intent_confidence": None, "willingness": None, "act": None}
    values.update(fields)
    turn = Turn(conversation_id=conversation_id, seq=seq, speaker=speaker, text=text, at=at,
                **values)
    session.add(turn)
    return turn


def add_flag(session: Session, conversation: Conversation, kind: str, note: str,
             at: datetime) -> None:
    session.add(Flag(conversation_id=conversation.id, borrower_id=conversation.borrower_id,
                     loan_id=conversation.loan_id, kind=kind, note=_mask(note)[:500],
                     created_at=at))
    if kind not in conversation.flags:
        conversation.flags = [*conversation.flags, kind]


def _live_promises(session: Session, conversation_id: str) -> list[Promise]:
    return list(session.execute(
        select(Promise).where(Promise.conversation_id == conversation_id,
                              Promise.status == "pending").order_by(Promise.id)).scalars())


def apply_effects(session: Session, conversation: Conversation, effects: Iterable[fx.Effect],
                  at: datetime, timezone: str = "Asia/Shanghai") -> None:
    """Persist what the engine decided, in the caller's transaction."""
    for effect in effects:
        if isinstance(effect, fx.Flag):
            add_flag(session, conversation, effect.flag, effect.note, at)
        elif isinstance(effect, fx.RecordPromise) and conversation.loan_id:
            # A later promise in the same conversation cancels the earlier one.
            for old in _live_promises(session, conversation.id):
                old.status = "cancelled"
            session.add(Promise(conversation_id=conversation.id, loan_id=conversation.loan_id,
                                amount=cents(Decimal(effect.amount)),
                                due_date=date.fromisoformat(effect.due_date),
                                status="pending", created_at=at, confirmed=effect.confirmed,
                                plan=effect.plan))
            session.flush()
        elif isinstance(effect, fx.ConfirmPromise):
            live = _live_promises(session, conversation.id)
            if live:
                live[-1].confirmed = True
        elif isinstance(effect, fx.CancelPromise):
            for old in _live_promises(session, conversation.id):
                old.status = "cancelled"
        elif isinstance(effect, fx.Restrict):
            session.add(ContactRestriction(
                borrower_id=conversation.borrower_id,
                loan_id=conversation.loan_id if effect.reason == "disputed" else None,
                kind=effect.reason, channel=effect.channel,
                conversation_id=conversation.id, created_at=at))
        elif isinstance(effect, fx.PauseLoan) and conversation.loan_id:
            session.execute(update(Loan).where(Loan.id == conversation.loan_id)
                            .values(paused_reason=effect.reason))
        elif isinstance(effect, fx.SetAbility):
            session.execute(update(Borrower).where(Borrower.id == conversation.borrower_id)
                            .values(ability=effect.ability))
        elif isinstance(effect, fx.Callback):
            local_day = date.fromisoformat(effect.date) if effect.date else None
            when = None
            if local_day is not None:
                hour = effect.hour if effect.hour is not None else PART_HOURS.get(
                    effect.part or "", 9)
                when = datetime.combine(local_day, time(min(max(hour, 0), 23)),
                                        ZoneInfo(timezone))
            session.add(Callback(borrower_id=conversation.borrower_id,
                                 loan_id=conversation.loan_id, conversation_id=conversation.id,
                                 at=when, note=_mask(effect.phrase), local_date=local_day,
                                 part=effect.part))
        elif isinstance(effect, fx.HandOff):
            pass  # the handoff flag is the record; the console queues flagged conversations


def _paid_towards(session: Session, promise: Promise) -> Decimal:
    """What payments posted since the promise was made cover of it (capped at its amount)."""
    paid = session.execute(select(func.coalesce(func.sum(Payment.amount), 0)).where(
        Payment.loan_id == promise.loan_id, Payment.paid_at >= promise.created_at)).scalar_one()
    return min(cents(Decimal(str(paid or 0))), cents(promise.amount))


def conversation_summary(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.id, "channel": conversation.channel,
        "direction": conversation.direction, "loan_id": conversation.loan_id,
        "borrower_id": conversation.borrower_id,
        "started_at": conversation.started_at.isoformat(),
        "ended_at": conversation.ended_at.isoformat() if conversation.ended_at else None,
        "outcome": conversation.outcome, "willingness": conversation.willingness,
        "strategy": conversation.strategy, "segment": conversation.segment,
        "flags": list(conversation.flags), "call_id": conversation.call_id,
        "qa_score": conversation.qa_score,
        "qa_violations": (conversation.qa or {}).get("violations_by_rule", {}),
    }


def conversation_detail(session: Session, conversation: Conversation) -> dict[str, Any]:
    turns = session.execute(select(Turn).where(Turn.conversation_id == conversation.id)
                            .order_by(Turn.seq)).scalars().all()
    promises = session.execute(select(Promise).where(Promise.conversation_id == conversation.id)
                               .order_by(Promise.id)).scalars().all()
    flags = session.execute(select(Flag).where(Flag.conversation_id == conversation.id)
                            .order_by(Flag.id)).scalars().all()
    return {
        **conversation_summary(conversation),
        "recordings": conversation.recordings or {},
        "turns": [{"seq": t.seq, "speaker": t.speaker, "text": t.text, "intent": t.intent,
                   "intent_confidence": t.intent_confidence, "willingness": t.willingness,
                   "entities": t.entities or [], "compliance": t.compliance or [],
                   "act": t.act, "meta": t.meta or {}, "at": t.at.isoformat()} for t in turns],
        "promises": [{"amount": float(cents(p.amount)), "due_date": p.due_date.isoformat(),
                      "status": p.status, "confirmed": bool(p.confirmed), "plan": p.plan,
                      "paid_amount": float(_paid_towards(session, p)),
                      "created_at": p.created_at.isoformat()}
                     for p in promises],
        "flag_details": [{"kind": f.kind, "note": _mask(f.note), "at": f.created_at.isoformat()}
                         for f in flags],
        "reviews": reviews_for(session, conversation.id),
    }
