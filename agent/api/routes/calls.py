"""Outbound calls: every dial passes the contact rules first and is counted in the database."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from agent.api.deps import ApiKey, ServicesDep
from agent.calls import CallRefused, TelephonyUnavailable, place_call
from agent.media_auth import issue_media_token

router = APIRouter(prefix="/api/v1", tags=["calls"], dependencies=[ApiKey])


class CallRequest(BaseModel):
    loan_id: str = Field(min_length=1, max_length=64)


@router.post("/calls")
async def create_call(body: CallRequest, services: ServicesDep) -> Any:
    try:
        return await place_call(services, body.loan_id)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from exc
    except CallRefused as exc:
        return JSONResponse({"allowed": False, "reason": exc.reason,
                             "detail": f"contact not allowed now: {exc.reason}"}, status_code=409)
    except TelephonyUnavailable as exc:
        raise HTTPException(503, str(exc)) from exc


class MediaTokenRequest(BaseModel):
    loan_id: str = Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]+$")
    direction: Literal["outbound", "inbound"] = "outbound"


class MediaTokenResponse(BaseModel):
    token: str
    expires_at: str


@router.post("/media-tokens", response_model=MediaTokenResponse)
async def create_media_token(body: MediaTokenRequest, services: ServicesDep) -> Any:
    """A single-use credential for one ``/ws/media`` stream about this loan (contract v1.1)."""
    try:
        token, expires_at = await asyncio.to_thread(
            issue_media_token, services.engine, body.loan_id, body.direction, services.clock(),
            services.settings.media_token_ttl_s)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from exc
    return {"token": token, "expires_at": expires_at.isoformat()}
