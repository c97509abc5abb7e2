"""Promise-to-pay resolution: kept, partially kept or broken, from the payments that arrived.

Pure: the caller passes the payments and the clock. A promise is kept once payments made from
its creation up to the end of its due date plus the grace days (the borrower's calendar) reach
its amount, which can happen before the date; when the grace ends short of it, it is
partially kept if something arrived and broken if nothing did.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo


class PromiseStatus(StrEnum):
    PENDING = "pending"
    KEPT = "kept"
    PARTIALLY_KEPT = "partially_kept"
    BROKEN = "broken"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class PromiseVerdict:
    status: PromiseStatus
    paid: Decimal  # what counted towards the promise, capped at its amount
    deadline: datetime


def deadline(due_date: date, grace_days: int, timezone: str) -> datetime:
    """The first instant after the grace: midnight after ``due_date + grace_days``, local."""
    return datetime.combine(due_date + timedelta(days=grace_days + 1), time(0), ZoneInfo(timezone))


def judge(amount: Decimal, due_date: date, created_at: datetime,
          payments: Iterable[tuple[datetime, Decimal]], *, now: datetime, grace_days: int,
          timezone: str) -> PromiseVerdict:
    end = deadline(due_date, grace_days, timezone)
    paid = sum((value for at, value in payments if created_at <= at < end), Decimal(0))
    paid = min(paid, amount)
    if paid >= amount:
        return PromiseVerdict(PromiseStatus.KEPT, paid, end)
    if now < end:
        return PromiseVerdict(PromiseStatus.PENDING, paid, end)
    status = PromiseStatus.PARTIALLY_KEPT if paid > 0 else PromiseStatus.BROKEN
    return PromiseVerdict(status, paid, end)
