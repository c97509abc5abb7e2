"""Promise resolution at its boundaries: the grace day in the borrower's calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from agent.core.promises import PromiseStatus, judge

SH = "Asia/Shanghai"
MADE = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
DUE = date(2026, 11, 27)
GRACE_END = datetime(2026, 11, 28, 16, 0, tzinfo=UTC)  # 2026-11-29 00:00 in Shanghai


def at(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def verdict(payments: list[tuple[str, str]], now: datetime, grace: int = 1,
            amount: str = "3000") -> tuple[PromiseStatus, Decimal]:
    v = judge(Decimal(amount), DUE, MADE, [(at(t), Decimal(a)) for t, a in payments],
              now=now, grace_days=grace, timezone=SH)
    return v.status, v.paid


def test_kept_as_soon_as_payments_reach_the_amount_even_before_the_date() -> None:
    assert verdict([("2026-11-25T12:00:00+08:00", "1000"),
                    ("2026-11-26T09:00:00+08:00", "2500")], MADE) == (
        PromiseStatus.KEPT, Decimal("3000"))


def test_pending_until_the_grace_ends_then_partially_kept_or_broken() -> None:
    partial = [("2026-11-27T20:00:00+08:00", "1200")]
    assert verdict(partial, GRACE_END - timedelta(seconds=1))[0] is PromiseStatus.PENDING
    assert verdict(partial, GRACE_END) == (PromiseStatus.PARTIALLY_KEPT, Decimal("1200"))
    assert verdict([], GRACE_END) == (PromiseStatus.BROKEN, Decimal("0"))


@pytest.mark.parametrize(("paid_at", "counts"), [
    ("2026-11-28T23:59:59+08:00", True),   # last second of the grace day, Shanghai
    ("2026-11-29T00:00:00+08:00", False),  # the grace has ended
    ("2026-11-25T09:59:59+08:00", False),  # before the promise was made
])
def test_which_payments_count(paid_at: str, counts: bool) -> None:
    status, _ = verdict([(paid_at, "3000")], GRACE_END)
    assert status is (PromiseStatus.KEPT if counts else PromiseStatus.BROKEN)


def test_grace_days_are_configurable() -> None:
    late = [("2026-11-29T10:00:00+08:00", "3000")]
    assert verdict(late, at("2026-12-01T00:00:00+08:00"), grace=1)[0] is PromiseStatus.BROKEN
    assert verdict(late, at("2026-12-01T00:00:00+08:00"), grace=3)[0] is PromiseStatus.KEPT
    assert verdict([], at("2026-11-28T00:00:00+08:00"), grace=0)[0] is PromiseStatus.BROKEN
