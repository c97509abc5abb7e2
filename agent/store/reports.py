"""Results per strategy version and champion/challenger arm, for ops tuning strategies."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import Session

from agent.core.money import cents
from agent.core.promises import PromiseStatus
from agent.store.tables import Conversation, Payment, Promise


def strategy_report(session: Session, start: date, end: date, timezone: str
                    ) -> list[dict[str, Any]]:
    """Conversations started from ``start`` to ``end`` (inclusive, in ``timezone``) and the
    promises made in them, one row per strategy version and arm.

    ``amount_collected``: what payments covered of those promises (capped at each amount) —
    at resolution for judged promises, so far for pending ones.
    """
    zone = ZoneInfo(timezone)
    since = datetime.combine(start, time(0), zone)
    until = datetime.combine(end + timedelta(days=1), time(0), zone)
    conversations = session.execute(
        select(Conversation.id, Conversation.strategy, Conversation.arm, Conversation.state)
        .where(Conversation.started_at >= since, Conversation.started_at < until)).all()
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    key_of: dict[str, tuple[str, str]] = {}
    for conversation_id, strategy, arm, state in conversations:
        key = (strategy or "unknown", arm or "champion")
        row = rows.setdefault(key, _empty(*key))
        row["conversations"] += 1
        row["right_party_contacts"] += bool((state or {}).get("verified"))
        key_of[conversation_id] = key
    if not key_of:
        return []
    promises = list(session.execute(select(Promise).where(
        Promise.conversation_id.in_(list(key_of)),
        Promise.status != PromiseStatus.CANCELLED)).scalars())
    paid = _paid_so_far(session, [p for p in promises if p.status == PromiseStatus.PENDING])
    for promise in promises:
        row = rows[key_of[promise.conversation_id]]
        row["promises"] += 1
        if promise.status != PromiseStatus.PENDING:
            row[f"promises_{promise.status}"] += 1
        row["amount_promised"] += promise.amount
        row["amount_collected"] += (promise.paid_at_resolution or Decimal(0)
                                    if promise.status != PromiseStatus.PENDING
                                    else paid.get(promise.id or 0, Decimal(0)))
    out = []
    for row in sorted(rows.values(), key=lambda r: (r["strategy"], r["arm"])):
        judged = row["promises_kept"] + row["promises_partially_kept"] + row["promises_broken"]
        row["promises_pending"] = row["promises"] - judged
        row["promise_rate"] = round(row["promises"] / row["right_party_contacts"], 3) \
            if row["right_party_contacts"] else None
        row["kept_rate"] = round(row["promises_kept"] / judged, 3) if judged else None
        for field in ("amount_promised", "amount_collected"):
            row[field] = float(cents(row[field]))
        out.append(row)
    return out


def _empty(strategy: str, arm: str) -> dict[str, Any]:
    return {"strategy": strategy, "arm": arm, "conversations": 0, "right_party_contacts": 0,
            "promises": 0, "promises_kept": 0, "promises_partially_kept": 0,
            "promises_broken": 0, "amount_promised": Decimal(0),
            "amount_collected": Decimal(0)}


def _paid_so_far(session: Session, promises: list[Promise]) -> dict[int, Decimal]:
    by_loan: dict[str, list[tuple[datetime, Decimal]]] = defaultdict(list)
    if promises:
        for loan_id, paid_at, amount in session.execute(
                select(Payment.loan_id, Payment.paid_at, Payment.amount)
                .where(Payment.loan_id.in_({p.loan_id for p in promises}))):
            by_loan[loan_id].append((paid_at, amount))
    return {p.id or 0: min(p.amount, sum((a for at, a in by_loan[p.loan_id]
                                          if at >= p.created_at), Decimal(0)))
            for p in promises}
