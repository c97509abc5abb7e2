"""Conversations, turns, promises, flags and contact restrictions in the database."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlmodel import Session

from agent.core.dialogue import Effect
from agent.store.reviews import reviews_for
from agent.store.tables import (
    Borrower,
    Callback,
    ContactRestriction,
    Conversation,
    Flag,
    Loan,
    Promise,
    Turn,
)


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
                     loan_id=conversation.loan_id, kind=kind, note=note[:500], created_at=at))
    if kind not in conversation.flags:
        conversation.flags = [*conversation.flags, kind]


def apply_effects(session: Session, conversation: Conversation, effects: Iterable[Effect],
                  at: datetime) -> None:
    """Persist what the dialogue decided, in the caller's transaction."""
    for effect in effects:
        data = effect.data
        if effect.kind == "flag":
            add_flag(session, conversation, data["kind"], data.get("note", ""), at)
        elif effect.kind == "promise" and conversation.loan_id:
            session.add(Promise(conversation_id=conversation.id, loan_id=conversation.loan_id,
                                amount=Decimal(str(data["amount"])),
                                due_date=date.fromisoformat(data["due_date"]),
                                status="pending", created_at=at))
        elif effect.kind == "restrict":
            session.add(ContactRestriction(
                borrower_id=conversation.borrower_id,
                loan_id=conversation.loan_id if data["kind"] == "disputed" else None,
                kind=data["kind"], channel=data.get("channel", "all"),
                conversation_id=conversation.id, created_at=at))
        elif effect.kind == "pause_loan" and conversation.loan_id:
            session.execute(update(Loan).where(Loan.id == conversation.loan_id)
                            .values(paused_reason=data.get("reason", "paused")))
        elif effect.kind == "ability":
            session.execute(update(Borrower).where(Borrower.id == conversation.borrower_id)
                            .values(ability=data["ability"]))
        elif effect.kind == "callback":
            when = None
            if data.get("date"):
                when = datetime.combine(date.fromisoformat(data["date"]), datetime.min.time(),
                                        UTC)
            session.add(Callback(borrower_id=conversation.borrower_id,
                                 loan_id=conversation.loan_id, conversation_id=conversation.id,
                                 at=when, note=data.get("phrase", "")))
        elif effect.kind == "handoff":
            pass  # the handoff flag is the record; the console queues flagged conversations


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
        "promises": [{"amount": float(p.amount), "due_date": p.due_date.isoformat(),
                      "status": p.status, "created_at": p.created_at.isoformat()}
                     for p in promises],
        "flag_details": [{"kind": f.kind, "note": f.note, "at": f.created_at.isoformat()}
                         for f in flags],
        "reviews": reviews_for(session, conversation.id),
    }
