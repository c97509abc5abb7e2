"""Resolve pending promises against posted payments; idempotent, run on payment and daily."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlmodel import Session

from agent.core.promises import PromiseStatus, judge
from agent.store.tables import Borrower, Loan, Payment, Promise


def resolve_promises(session: Session, now: datetime, grace_days: int,
                     loan_ids: Iterable[str] | None = None) -> dict[str, int]:
    """Judge every pending promise (of ``loan_ids``, or all); returns counts by new status.

    Running it twice changes nothing: only pending promises are judged, and a judged promise
    keeps its status, resolution time and the amount that covered it.
    """
    query = (select(Promise, Borrower.timezone)
             .join(Loan, Loan.id == Promise.loan_id)
             .join(Borrower, Borrower.id == Loan.borrower_id)
             .where(Promise.status == PromiseStatus.PENDING))
    if loan_ids is not None:
        ids = sorted(set(loan_ids))
        if not ids:
            return {}
        query = query.where(Promise.loan_id.in_(ids))
    pending = session.execute(query).all()
    if not pending:
        return {}
    payments: dict[str, list[tuple[datetime, Decimal]]] = defaultdict(list)
    for loan_id, paid_at, amount in session.execute(
            select(Payment.loan_id, Payment.paid_at, Payment.amount)
            .where(Payment.loan_id.in_({p.loan_id for p, _ in pending}))):
        payments[loan_id].append((paid_at, amount))
    counts: dict[str, int] = defaultdict(int)
    for promise, timezone in pending:
        verdict = judge(promise.amount, promise.due_date, promise.created_at,
                        payments[promise.loan_id], now=now, grace_days=grace_days,
                        timezone=timezone)
        if verdict.status is PromiseStatus.PENDING:
            continue
        promise.status = verdict.status.value
        promise.resolved_at = now
        promise.paid_at_resolution = verdict.paid
        session.add(promise)
        counts[verdict.status.value] += 1
    session.flush()
    return dict(counts)
