"""Outbound calls: every dial passes the contact rules first and is counted in the database."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from agent.api.deps import ApiKey, ServicesDep
from agent.calls import CallRefused, TelephonyUnavailable, place_call

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
