"""Supervisor console support: reviews of conversations and their call recordings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field, field_validator

from agent.api.deps import ApiKey, ServicesDep, SessionDep
from agent.store.reviews import add_review, review_dict, reviews_for
from agent.store.tables import Conversation
from voice.audio import read_wav_label

router = APIRouter(prefix="/api/v1/conversations", tags=["reviews"], dependencies=[ApiKey])


class ReviewRequest(BaseModel):
    verdict: Literal["ok", "issue"]
    note: str = Field(default="", max_length=2000)
    reviewer: str = Field(min_length=1, max_length=100)

    @field_validator("reviewer")
    @classmethod
    def _reviewer_named(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("reviewer must not be blank")
        return value

    @field_validator("note")
    @classmethod
    def _note_trimmed(cls, value: str) -> str:
        return value.strip()


def _conversation(session: SessionDep, conversation_id: str) -> Conversation:
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise HTTPException(404, f"unknown conversation {conversation_id!r}")
    return conversation


@router.post("/{conversation_id}/reviews", status_code=201)
def create_review(conversation_id: str, body: ReviewRequest, session: SessionDep,
                  services: ServicesDep) -> dict[str, Any]:
    _conversation(session, conversation_id)
    review = add_review(session, conversation_id, body.verdict, body.note, body.reviewer,
                        services.clock())
    return review_dict(review)


@router.get("/{conversation_id}/reviews")
def list_reviews(conversation_id: str, session: SessionDep) -> list[dict[str, Any]]:
    _conversation(session, conversation_id)
    return reviews_for(session, conversation_id)


@router.get("/{conversation_id}/recordings/{leg}")
def get_recording(conversation_id: str, leg: str, session: SessionDep,
                  services: ServicesDep) -> FileResponse:
    """The WAV of one call leg; only files inside the data directory are ever served."""
    conversation = _conversation(session, conversation_id)
    stored = (conversation.recordings or {}).get(leg)
    missing = HTTPException(404, f"no {leg!r} recording for conversation {conversation_id!r}")
    if not isinstance(stored, str) or not stored:
        raise missing
    data_dir = Path(services.settings.data_dir).resolve()
    # Relative paths: to the data dir, or to the working directory (a relative data_dir setting).
    candidates = [Path(stored)] if Path(stored).is_absolute() else [data_dir / stored,
                                                                     Path(stored)]
    path = next((p for p in (c.resolve() for c in candidates)
                 if p.is_relative_to(data_dir) and p.suffix.lower() == ".wav" and p.is_file()),
                None)
    if path is None:
        raise missing
    label = read_wav_label(path)  # the agent leg carries the AI-generated-content label
    return FileResponse(path, media_type="audio/wav",
                        filename=f"{conversation_id}-{leg}.wav",
                        content_disposition_type="inline",
                        headers={"X-AI-Content-Label": json.dumps(label)} if label else None)
