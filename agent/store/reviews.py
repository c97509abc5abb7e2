"""Supervisor reviews of conversations: a verdict (ok | issue), a note and who reviewed.

Kept out of ``agent.store.tables`` on purpose; the migration environment imports this module so
autogenerate and ``migrate`` see the table.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, select
from sqlmodel import Field, Session, SQLModel

from agent.store.tables import utcnow
from agent.store.types import UTCDateTime
from nlp.masking import mask_sensitive

VERDICTS = ("ok", "issue")


class Review(SQLModel, table=True):
    __tablename__ = "reviews"
    __table_args__ = (Index("ix_reviews_conversation_created", "conversation_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: str = Field(foreign_key="conversations.id", max_length=40)
    verdict: str = Field(max_length=8)  # ok | issue
    note: str = ""
    reviewer: str = Field(max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime()))


def review_dict(review: Review) -> dict[str, Any]:
    return {"id": review.id, "conversation_id": review.conversation_id,
            "verdict": review.verdict, "note": review.note, "reviewer": review.reviewer,
            "created_at": review.created_at.isoformat()}


def add_review(session: Session, conversation_id: str, verdict: str, note: str, reviewer: str,
               at: datetime) -> Review:
    # Supervisors paste what the borrower said; identifiers are masked like every turn.
    review = Review(conversation_id=conversation_id, verdict=verdict, note=mask_sensitive(note),
                    reviewer=reviewer, created_at=at)
    session.add(review)
    session.flush()
    return review


def reviews_for(session: Session, conversation_id: str) -> list[dict[str, Any]]:
    rows = session.execute(select(Review).where(Review.conversation_id == conversation_id)
                           .order_by(Review.created_at, Review.id)).scalars()
    return [review_dict(r) for r in rows]


def reviewed_ids(session: Session, conversation_ids: list[str]) -> set[str]:
    if not conversation_ids:
        return set()
    rows = session.execute(select(Review.conversation_id).distinct()
                           .where(Review.conversation_id.in_(conversation_ids)))
    return set(rows.scalars())
