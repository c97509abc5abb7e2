"""Transcripts for collection supervisors: masked turns with labels, promises and flags."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import select

from agent.api.deps import ApiKey, SessionDep
from agent.store.conversations import conversation_detail, conversation_summary
from agent.store.reviews import Review, reviewed_ids
from agent.store.tables import Conversation, Flag

router = APIRouter(prefix="/api/v1/conversations", tags=["conversations"], dependencies=[ApiKey])


@router.get("")
def list_conversations(session: SessionDep, loan_id: str | None = None,
                       borrower_id: str | None = None, flag: str | None = None,
                       outcome: str | None = None, channel: str | None = None,
                       reviewed: bool | None = None,
                       order: Literal["recent", "qa"] = Query(
                           "recent", description="qa: the QA queue, lowest score first "
                                                 "(scored when a conversation ends)"),
                       limit: int = Query(100, ge=1, le=1000),
                       offset: int = Query(0, ge=0, le=10_000_000)) -> list[dict[str, Any]]:
    query = select(Conversation)
    if loan_id:
        query = query.where(Conversation.loan_id == loan_id)
    if borrower_id:
        query = query.where(Conversation.borrower_id == borrower_id)
    if outcome:
        query = query.where(Conversation.outcome == outcome)
    if channel:
        query = query.where(Conversation.channel == channel)
    if flag:
        flagged = select(Flag.conversation_id).where(Flag.kind == flag)
        query = query.where(Conversation.id.in_(flagged))
    if reviewed is not None:
        with_review = Conversation.id.in_(select(Review.conversation_id))
        query = query.where(with_review if reviewed else ~with_review)
    if order == "qa":
        query = query.where(Conversation.qa_score.is_not(None)).order_by(
            Conversation.qa_score, Conversation.started_at.desc(), Conversation.id)
    else:
        query = query.order_by(Conversation.started_at.desc(), Conversation.id)
    query = query.offset(offset).limit(limit)
    rows = list(session.execute(query).scalars())
    done = reviewed_ids(session, [c.id for c in rows])
    return [{**conversation_summary(c), "reviewed": c.id in done} for c in rows]


@router.get("/{conversation_id}")
def get_conversation(conversation_id: str, session: SessionDep) -> dict[str, Any]:
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise HTTPException(404, f"unknown conversation {conversation_id!r}")
    return conversation_detail(session, conversation)
