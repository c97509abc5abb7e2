"""Language understanding over HTTP, the same pipeline the dialogue uses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from agent.api.deps import ApiKey, ServicesDep
from agent.api.timeparam import parse_time

router = APIRouter(prefix="/api/v1/nlu", tags=["language understanding"], dependencies=[ApiKey])


class ParseRequest(BaseModel):
    text: str = Field(max_length=100_000)
    ref: str | None = None


@router.post("/parse")
async def parse(body: ParseRequest, services: ServicesDep) -> dict[str, Any]:
    if not body.text.strip():
        raise HTTPException(422, "text: must not be empty or whitespace only")
    ref: datetime = parse_time(body.ref, "ref") if body.ref else services.clock()
    result = await run_in_threadpool(services.nlu.parse, body.text, ref)
    return result.as_dict()
