"""The world every story runs in (tests/stories/README.md): a frozen clock and five loans.

Clock: Thursday 2026-12-03 10:00 Asia/Shanghai. One borrower per loan key, so restrictions
and pauses of one story's loan never touch another's. Figures are computed by the position
engine (``position_for``), never written here.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 3, 10, 0, tzinfo=SHANGHAI).astimezone(UTC)
TODAY = date(2026, 12, 3)


def _schedule(first_month: tuple[int, int], day: int, count: int, principal: float,
              interest: float) -> list[dict[str, Any]]:
    year, month = first_month
    rows = []
    for seq in range(1, count + 1):
        rows.append({"seq": seq, "due_date": f"{year}-{month:02d}-{day:02d}",
                     "principal": principal, "interest": interest, "fee": 0})
        month += 1
        if month > 12:
            year, month = year + 1, 1
    return rows


def _paid(loan_id: str, schedule: list[dict[str, Any]], upto: int) -> list[dict[str, Any]]:
    """On-time payments of the first ``upto`` instalments."""
    return [{"id": f"{loan_id}-P{row['seq']}", "loan_id": loan_id,
             "amount": row["principal"] + row["interest"],
             "paid_at": f"{row['due_date']}T09:00:00+08:00", "channel": "app"}
            for row in schedule[:upto]]


# current: 6,000 loan, 1,090 due 12-10, 3,000 principal left (three of six paid on time).
_CURRENT = _schedule((2026, 9), 10, 6, 1000, 90)
# m1: 10,000 loan, 1,150 due 11-20 unpaid (13 days), 7,000 principal left.
_M1 = _schedule((2026, 8), 20, 10, 1000, 150)
# m2: 10,000 loan, 1,125 due 10-15 and 11-15 overdue, 1,000 paid on 11-05 (49 days).
_M2 = _schedule((2026, 8), 15, 10, 1000, 125)
# m3: 18,000 loan, 1,800 due 09-19, 10-19, 11-19 overdue (75 days).
_M3 = _schedule((2026, 7), 19, 10, 1500, 300)
# paid_yesterday: 1,150 due 11-20, paid 12-02 by Alipay; no penalty on this product.
_PAID_Y = _schedule((2026, 11), 20, 6, 1000, 150)

LOANS: dict[str, dict[str, Any]] = {
    "current": {"id": "LCUR", "borrower_id": "BCUR", "principal": 6000, "annual_rate": 0.18,
                "penalty_rate_daily": 0.0005, "disbursed_on": "2026-08-10",
                "installments": _CURRENT},
    "m1": {"id": "LM1", "borrower_id": "BM1", "principal": 10000, "annual_rate": 0.18,
           "penalty_rate_daily": 0.0005, "disbursed_on": "2026-07-20", "installments": _M1},
    "m2": {"id": "LM2", "borrower_id": "BM2", "principal": 10000, "annual_rate": 0.15,
           "penalty_rate_daily": 0.0005, "disbursed_on": "2026-07-15", "installments": _M2},
    "m3": {"id": "LM3", "borrower_id": "BM3", "principal": 15000, "annual_rate": 0.24,
           "penalty_rate_daily": 0.0008, "disbursed_on": "2026-06-19", "installments": _M3},
    "paid_yesterday": {"id": "LPY", "borrower_id": "BPY", "principal": 6000,
                       "annual_rate": 0.18, "penalty_rate_daily": 0,
                       "disbursed_on": "2026-10-20", "installments": _PAID_Y},
}

PAYMENTS: list[dict[str, Any]] = [
    *_paid("LCUR", _CURRENT, 3),
    *_paid("LM1", _M1, 3),
    *_paid("LM2", _M2, 2),
    {"id": "LM2-PART", "loan_id": "LM2", "amount": 1000, "paid_at": "2026-11-05T12:00:00+08:00",
     "channel": "wechat"},
    *_paid("LM3", _M3, 2),
    {"id": "LPY-P1", "loan_id": "LPY", "amount": 1150, "paid_at": "2026-12-02T15:30:00+08:00",
     "channel": "alipay"},
]

NAMES = {"BCUR": "张伟", "BM1": "李娜", "BM2": "王强", "BM3": "刘洋", "BPY": "陈静"}


def portfolio() -> dict[str, Any]:
    """The whole world as one POST /api/v1/portfolio document."""
    borrowers = [{"id": bid, "name": name, "phone": f"1380000{index:04d}",
                  "timezone": "Asia/Shanghai",
                  "emergency_contacts": [{"name": "赵敏", "phone": f"1390000{index:04d}",
                                          "relation": "spouse"}]}
                 for index, (bid, name) in enumerate(NAMES.items(), start=1)]
    return {"borrowers": borrowers, "loans": list(LOANS.values()), "payments": PAYMENTS}


def figure(position: Any, name: str) -> Decimal:
    """A README figure name (total_due, overdue, half:total_due…) from a position, exact."""
    if name.startswith("half:"):
        return figure(position, name.removeprefix("half:")) / 2
    fields = {"total_due": position.total_due, "overdue": position.overdue_amount,
              "penalty": position.penalty, "next_due_amount": position.next_due_amount,
              "settle": position.early_settlement_amount,
              "outstanding": position.outstanding_principal}
    return fields[name]
