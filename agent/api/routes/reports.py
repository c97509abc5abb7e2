"""Ops reports: what each strategy version and champion/challenger arm achieved."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query
from fastapi.concurrency import run_in_threadpool
from sqlmodel import Session

from agent.api.deps import ApiKey, ServicesDep
from agent.store.reports import strategy_report

router = APIRouter(prefix="/api/v1/reports", tags=["reports"], dependencies=[ApiKey])


@router.get("/strategies")
async def strategies_report(
        services: ServicesDep,
        start: date | None = Query(None, alias="from", description="first day (default: 30 days ago)"),
        end: date | None = Query(None, alias="to", description="last day, inclusive (default: today)"),
) -> list[dict[str, Any]]:
    """One row per strategy version and arm; days are the lender's calendar (profile timezone)."""
    timezone = services.policy.default_timezone
    today = services.clock().astimezone(ZoneInfo(timezone)).date()
    end = end or today
    start = start or end - timedelta(days=29)
    if start > end:
        raise HTTPException(422, f"from ({start}) is after to ({end})")
    if (end - start).days > 366:
        raise HTTPException(422, "a report covers at most 366 days")

    def build() -> list[dict[str, Any]]:
        with Session(services.engine) as session:
            return strategy_report(session, start, end, timezone)

    return await run_in_threadpool(build)
