"""Chat sessions for the widget: the lender's back-end asks for a token for its logged-in borrower."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from agent.api.deps import ApiKey, ServicesDep, SessionDep
from agent.chat_tokens import ChatClaims, issue
from agent.contacts import reserve_contact
from agent.store.tables import Borrower, ChatSession, Loan

router = APIRouter(prefix="/api/v1/chat", tags=["chat"], dependencies=[ApiKey])


class ChatSessionRequest(BaseModel):
    borrower_id: str = Field(min_length=1, max_length=64)
    loan_id: str | None = Field(default=None, min_length=1, max_length=64)
    # Extension: "outbound" for a collection chat the lender pushes (identity confirmed first).
    direction: Literal["inbound", "outbound"] = "inbound"


@router.post("/sessions")
def create_session(body: ChatSessionRequest, session: SessionDep, services: ServicesDep,
                   request: Request) -> Any:
    client = request.client.host if request.client else "?"
    if not request.app.state.session_rate.allow(client):
        raise HTTPException(429, "too many chat sessions requested: slow down",
                            headers={"Retry-After": "1"})
    if session.get(Borrower, body.borrower_id) is None:
        raise HTTPException(404, f"unknown borrower {body.borrower_id!r}")
    if body.loan_id is not None:
        loan = session.get(Loan, body.loan_id)
        if loan is None:
            raise HTTPException(404, f"unknown loan {body.loan_id!r}")
        if loan.borrower_id != body.borrower_id:
            raise HTTPException(403, f"loan {body.loan_id!r} does not belong to borrower "
                                     f"{body.borrower_id!r}")
    if body.direction == "outbound":
        # A pushed collection chat is a contact attempt: it passes the same gate as a call.
        if body.loan_id is None:
            raise HTTPException(422, "loan_id: required for an outbound chat")
        attempt = reserve_contact(session, services.policy, body.loan_id, "chat", services.clock())
        if attempt.outcome == "blocked":
            session.commit()
            return JSONResponse({"allowed": False, "reason": attempt.reason,
                                 "detail": f"contact not allowed now: {attempt.reason}"},
                                status_code=409)
        attempt.outcome = "connected"
    expires_at = services.clock() + timedelta(seconds=services.settings.chat_token_ttl_s)
    claims = ChatClaims(session_id=uuid.uuid4().hex, borrower_id=body.borrower_id,
                        loan_id=body.loan_id, expires_at=expires_at, direction=body.direction)
    session.add(ChatSession(id=claims.session_id, borrower_id=body.borrower_id,
                            loan_id=body.loan_id, expires_at=expires_at, direction=body.direction))
    # Committed before the token leaves: a widget that connects at once must find the row.
    session.commit()
    return {"token": issue(services.session_secret, claims),
            "expires_at": expires_at.isoformat(), "session_id": claims.session_id}
