"""A realistic synthetic portfolio so a newcomer sees a working system at once."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国志红玉兰海燕文博思雨子轩浩然欣怡梓涵宇航晨阳佳琪一鸣嘉怡俊杰雅婷"
TIMEZONES = ["Asia/Shanghai"] * 18 + ["Asia/Urumqi", "Asia/Hong_Kong"]
RELATIONS = ["spouse", "parent", "sibling", "friend", "colleague"]
CHANNELS = ["alipay", "wechat", "bank_card", "app"]
# Share of loans per target delinquency: current, M1 … M6+.
DPD_TARGETS = [(0, 0.40), (15, 0.18), (45, 0.12), (75, 0.09), (105, 0.07), (135, 0.05),
               (165, 0.04), (240, 0.05)]


def _cents(x: Decimal) -> Decimal:
    return x.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year = day.year + month // 12
    month = month % 12 + 1
    return date(year, month, min(day.day, 28))


def _name(rng: random.Random) -> str:
    given = "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
    return rng.choice(SURNAMES) + given


def _phone(rng: random.Random) -> str:
    return rng.choice(["138", "139", "150", "186", "177", "135", "158", "199"]) + "".join(
        rng.choice("0123456789") for _ in range(8))


def generate(borrowers: int = 3000, today: date | None = None, seed: int = 7) -> dict[str, Any]:
    """A portfolio document (the contract's shape): installment loans across current … M6+."""
    rng = random.Random(seed)
    today = today or datetime.now(ZoneInfo("Asia/Shanghai")).date()
    doc: dict[str, Any] = {"borrowers": [], "loans": [], "payments": []}
    payment_no = 0
    for b in range(1, borrowers + 1):
        borrower_id = f"B{b:06d}"
        doc["borrowers"].append({
            "id": borrower_id, "name": _name(rng), "phone": _phone(rng),
            "timezone": rng.choice(TIMEZONES),
            "emergency_contacts": [{"name": _name(rng), "phone": _phone(rng),
                                    "relation": rng.choice(RELATIONS)}],
        })
        for n in range(1 if rng.random() < 0.85 else 2):
            loan_id = f"L{b:06d}{n}"
            terms = rng.choice((6, 12, 12, 24))
            principal = Decimal(rng.choice((3000, 5000, 8000, 12000, 20000, 30000, 50000)))
            rate = Decimal(rng.choice(("0.18", "0.2", "0.24", "0.12")))
            target_dpd = rng.choices([d for d, _ in DPD_TARGETS], [w for _, w in DPD_TARGETS])[0]
            if target_dpd:
                target_dpd += rng.randint(-12, 12)
            # Disburse so that a few installments have fallen due before the overdue one.
            paid_terms = rng.randint(0, max(0, terms // 2))
            first_overdue = today - timedelta(days=max(target_dpd, 0)) if target_dpd > 0 else None
            if first_overdue is not None:
                disbursed = _add_months(first_overdue, -(paid_terms + 1))
            else:
                disbursed = _add_months(today, -rng.randint(1, terms))
            monthly_principal = _cents(principal / terms)
            monthly_interest = _cents(principal * rate / 12)
            installments = []
            for seq in range(1, terms + 1):
                p = monthly_principal if seq < terms else principal - monthly_principal * (terms - 1)
                installments.append({"seq": seq, "due_date": _add_months(disbursed, seq).isoformat(),
                                     "principal": float(p), "interest": float(monthly_interest),
                                     "fee": 0})
            doc["loans"].append({"id": loan_id, "borrower_id": borrower_id,
                                 "principal": float(principal), "annual_rate": float(rate),
                                 "penalty_rate_daily": 0.0005,
                                 "disbursed_on": disbursed.isoformat(),
                                 "installments": installments})
            for inst in installments:
                due = date.fromisoformat(inst["due_date"])
                if due > today:
                    break
                if first_overdue is not None and due >= first_overdue:
                    if rng.random() < 0.25:  # a partial payment on the overdue installment
                        payment_no += 1
                        amount = _cents(Decimal(str(inst["principal"] + inst["interest"])) *
                                        Decimal(rng.choice(("0.2", "0.3", "0.5"))))
                        doc["payments"].append(_payment(payment_no, loan_id, amount,
                                                        due + timedelta(days=rng.randint(2, 9)), rng))
                    break
                payment_no += 1
                amount = Decimal(str(inst["principal"])) + Decimal(str(inst["interest"]))
                doc["payments"].append(_payment(payment_no, loan_id, amount,
                                                due - timedelta(days=rng.randint(0, 3)), rng))
    return doc


def _payment(number: int, loan_id: str, amount: Decimal, day: date, rng: random.Random) -> dict[str, Any]:
    moment = datetime.combine(day, time(rng.randint(8, 21), rng.randint(0, 59)),
                              ZoneInfo("Asia/Shanghai")).astimezone(UTC)
    return {"id": f"P{number:08d}", "loan_id": loan_id, "amount": float(amount),
            "paid_at": moment.isoformat(), "channel": rng.choice(CHANNELS)}
