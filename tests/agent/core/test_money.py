"""One money path (issue 18): figures are the position's, rounded half up once."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.config.settings import REPO_ROOT
from agent.core.commands import SetSlot, StartFlow
from agent.core.engine import Engine, LoanFacts, new_state
from agent.core.money import cents, fraction_of, yuan_speech, yuan_text
from agent.core.positions import InstallmentTerms, LoanTerms, PaymentRecord, compute_position
from agent.session import MONEY_FIELDS, template_values
from agent.strategy import ACTS, StrategyBook, _Values

STRATEGY = StrategyBook(Path(REPO_ROOT / "strategies")).strategies["standard@3"]
SETTINGS = SimpleNamespace(lender_name="回款消费金融", complaint_hotline="400-800-1234",
                           payment_channels=("app", "alipay", "wechat", "bank_transfer"))
TOO_PRECISE = re.compile(r"\d+\.\d{3,}")


def test_rounding_is_half_up_once() -> None:
    assert cents(Decimal("1157.475")) == Decimal("1157.48")
    assert cents(Decimal("0.005")) == Decimal("0.01")
    assert fraction_of(Decimal("1157.475"), 1, 2) == Decimal("578.74")  # not 578.74 of 1157.48/2
    assert yuan_text(Decimal("3000")) == "3000" and yuan_text(Decimal("2401.3")) == "2401.30"


def test_speech_form() -> None:
    assert yuan_speech(Decimal("1110.53")) == "一千一百一十元五角三分"
    assert yuan_speech(Decimal("3000")) == "三千元整"
    assert yuan_speech(Decimal("10001")) == "一万零一元整"
    assert yuan_speech(Decimal("1157.48")) == "一千一百五十七元四角八分"
    assert yuan_speech(Decimal("100.05")) == "一百元零五分"


money = st.decimals(min_value=Decimal("50"), max_value=Decimal("20000"), places=2)


@st.composite
def loans(draw: st.DrawFn) -> tuple[LoanTerms, list[PaymentRecord]]:
    count = draw(st.integers(1, 8))
    first = date(2026, draw(st.integers(3, 12)), draw(st.integers(1, 28)))
    rows = tuple(InstallmentTerms(seq=i + 1, due_date=first + timedelta(days=30 * i),
                                  principal=draw(money), interest=draw(money) / 10,
                                  fee=Decimal(draw(st.integers(0, 30))))
                 for i in range(count))
    rate = Decimal(draw(st.integers(0, 15))) / Decimal(10000)
    terms = LoanTerms(loan_id="L", borrower_id="B", principal=sum(r.principal for r in rows),
                      annual_rate=Decimal("0.18"), penalty_rate_daily=rate,
                      disbursed_on=first - timedelta(days=30), timezone="Asia/Shanghai",
                      installments=rows)
    payments = [PaymentRecord(f"P{i}", draw(money),
                              datetime(2026, draw(st.integers(3, 12)), draw(st.integers(1, 28)),
                                       4, tzinfo=UTC))
                for i in range(draw(st.integers(0, 3)))]
    return terms, payments


def _facts(terms: LoanTerms, payments: list[PaymentRecord]) -> tuple[LoanFacts, object]:
    now = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)
    position = compute_position(terms, payments, now)
    overdue = [i for i in position.installments if i.status == "overdue"]
    return LoanFacts(borrower_name="张伟", dpd=position.dpd, bucket=position.bucket,
                     overdue=position.overdue_amount, penalty=position.penalty,
                     total_due=position.total_due,
                     outstanding=position.outstanding_principal,
                     settle=position.early_settlement_amount,
                     next_due_date=position.next_due_date,
                     next_due_amount=position.next_due_amount,
                     oldest_due_date=overdue[0].due_date if overdue else None,
                     annual_rate=terms.annual_rate, penalty_rate_daily=terms.penalty_rate_daily,
                     today=date(2026, 12, 3)), position


@settings(max_examples=60, deadline=None)
@given(loans())
def test_every_rendered_figure_is_the_position_field_to_the_cent(
        loan: tuple[LoanTerms, list[PaymentRecord]]) -> None:
    facts, position = _facts(*loan)
    expected = {"total_due": position.total_due, "overdue": position.overdue_amount,  # type: ignore[attr-defined]
                "penalty": position.penalty, "outstanding": position.outstanding_principal,  # type: ignore[attr-defined]
                "settle": position.early_settlement_amount,  # type: ignore[attr-defined]
                "next_due_amount": position.next_due_amount}  # type: ignore[attr-defined]
    values = template_values(facts, {}, "chat", SETTINGS)
    for name in MONEY_FIELDS:
        assert values[name] == yuan_text(cents(expected[name]))
    for act in ACTS:
        for variant in STRATEGY.templates[act]:
            text = variant.format_map(_Values(values))
            assert not TOO_PRECISE.search(text), (act, text)
            for name in MONEY_FIELDS:
                if "{" + name + "}" in variant:
                    assert yuan_text(cents(expected[name])) in text
    # 一半 of what is due, rounded once, as the engine stores and says it.
    if facts.promise_base > 0:
        state = new_state("inbound", "chat")
        decision = Engine(state, facts, STRATEGY, STRATEGY.flow_book).step(
            [SetSlot("amount", "half"), SetSlot("date", "2026-12-04"), StartFlow("promise")])
        recorded = [e for e in decision.effects if e.kind == "promise"]
        if recorded:
            assert Decimal(recorded[0].amount) == fraction_of(facts.promise_base, 1, 2)
