"""The same content check every agent utterance passes, exposed for scripts and QA."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from agent.api.deps import ApiKey, ServicesDep
from agent.policy.content import UtteranceContext, check_utterance

router = APIRouter(prefix="/api/v1/compliance", tags=["compliance"], dependencies=[ApiKey])


class CheckRequest(BaseModel):
    text: str = Field(min_length=1, max_length=10_000)
    # Optional context; by default the verified borrower mid-conversation.
    addressee: Literal["borrower", "third_party", "unknown"] = "borrower"
    identity_verified: bool = True
    is_opening: bool = False
    channel: Literal["voice", "chat", "sms"] = "chat"


@router.post("/check")
def check(body: CheckRequest, services: ServicesDep) -> dict[str, Any]:
    ctx = UtteranceContext(identity_verified=body.identity_verified, addressee=body.addressee,
                           is_opening=body.is_opening, channel=body.channel)
    return check_utterance(body.text, services.policy, ctx).to_dict()


@router.get("/rules")
def rules(services: ServicesDep) -> list[dict[str, Any]]:
    """The active profile's rules with citations and status, for compliance officers."""
    profile = services.policy
    return [{"id": r.id, "kind": r.kind, "status": r.status_label, "citation": r.citation,
             "enabled": profile.enabled(r.id)} for r in profile.rules]
