"""A loan's position at any moment, computed from the stored records."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from fastapi import APIRouter, HTTPException, Query

from agent.api.deps import ApiKey, ServicesDep, SessionDep
from agent.api.timeparam import parse_time
from agent.core.positions import compute_position
from agent.store.loans import load_loan

router = APIRouter(prefix="/api/v1", tags=["loan records"], dependencies=[ApiKey])


@router.get("/loans/{loan_id}")
def get_loan(loan_id: str, session: SessionDep, services: ServicesDep,
             as_of: str | None = Query(default=None, description="ISO 8601 time")) -> dict[str, Any]:
    when = parse_time(as_of, "as_of") if as_of else services.clock()
    loaded = load_loan(session, loan_id)
    if loaded is None:
        raise HTTPException(404, f"unknown loan {loan_id!r}")
    terms, payments = loaded
    return compute_position(terms, payments, when.astimezone(UTC)).as_contract_dict()
