"""Loan-record integration: the lender's back-end pushes borrowers, loans and payments."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from agent.api.deps import ApiKey, ServicesDep
from agent.portfolio import PortfolioError, parse_json, validate_document
from agent.store.db import run_with_retry, session_scope
from agent.store.loans import referenced_unknowns, upsert_document
from agent.store.promises import resolve_promises

router = APIRouter(prefix="/api/v1", tags=["loan records"], dependencies=[ApiKey])


@router.post("/portfolio")
async def push_portfolio(request: Request, services: ServicesDep) -> JSONResponse:
    """Idempotent upsert; an invalid document is rejected whole and nothing of it is written."""
    body = await request.body()

    def write() -> dict[str, int]:
        raw = parse_json(body)
        with session_scope(services.engine) as session:
            known_borrowers, known_loans = referenced_unknowns(session, raw)
            doc = validate_document(raw, known_borrowers, known_loans)
            counts = upsert_document(session, doc).as_dict()
            # Payments posted now may keep a promise: judged in the same transaction.
            resolve_promises(session, services.clock(), services.settings.promise_grace_days,
                             {p["loan_id"] for p in doc["payments"]})
            return counts

    try:
        counts = await run_in_threadpool(run_with_retry, write)
    except PortfolioError as exc:
        return JSONResponse({"detail": str(exc), "errors": exc.errors}, status_code=422)
    return JSONResponse({"status": "ok", **counts})
