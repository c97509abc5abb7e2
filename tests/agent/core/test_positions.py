"""Loan position engine: hand-worked contract examples and properties against a day-by-day oracle."""

from __future__ import annotations

import dataclasses
import importlib.util
import random
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.core.positions import (
    InstallmentPosition,
    InstallmentTerms,
    LoanPosition,
    LoanTerms,
    PaymentRecord,
    _installment_position,
    _loan_position,
    bucket_for,
    compute_position,
    round_cents,
)


def _load_reference():
    # The day-by-day oracle lives with the benchmark, which times the two side by side.
    path = Path(__file__).resolve().parents[3] / "scripts" / "bench_positions.py"
    spec = importlib.util.spec_from_file_location("bench_positions_for_tests", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.reference_position


reference_position = _load_reference()

D = Decimal
SH = "Asia/Shanghai"


def inst(seq: int, due: str, principal: str, interest: str, fee: str = "0") -> InstallmentTerms:
    return InstallmentTerms(seq, date.fromisoformat(due), D(principal), D(interest), D(fee))


def loan(*installments: InstallmentTerms, rate: str = "0.0005", tz: str = SH) -> LoanTerms:
    principal = sum((i.principal for i in installments), D(0))
    return LoanTerms(
        "L001", "B001", principal, D("0.18"), D(rate), date(2026, 5, 10), tz, tuple(installments)
    )


def pay(pid: str, amount: str, when: str) -> PaymentRecord:
    return PaymentRecord(pid, D(amount), datetime.fromisoformat(when))


def at(when: str) -> datetime:
    return datetime.fromisoformat(when)


THREE = (
    inst(1, "2026-06-10", "1000", "180"),
    inst(2, "2026-07-10", "1000", "180"),
    inst(3, "2026-08-10", "1000", "180"),
)


# --- hand-worked examples -------------------------------------------------------------------


def test_unpaid_47_days_worked_on_paper():
    # Worked by hand. Rate 0.0005/day, each installment 1,000 + 180 = 1,180, no payments,
    # as_of 2026-07-27 12:00 Shanghai.
    #   #1 due 06-10, overdue 06-11..07-27 = 20 (June) + 27 (July) = 47 days
    #       penalty 1,180 x 0.0005 x 47 = 0.59 x 47 = 27.73
    #   #2 due 07-10, overdue 07-11..07-27 = 17 days: 0.59 x 17 = 10.03
    #   #3 due 08-10, not yet due.
    # penalty 37.76; overdue 2,360; total due 2,397.76; dpd 47 -> M2.
    # Early settlement: all principal 3,000 + interest of the two due ones 360 + 37.76.
    pos = compute_position(loan(*THREE), [], at("2026-07-27T12:00:00+08:00"))
    assert pos.dpd == 47 and pos.bucket == "M2"
    assert pos.installments[0].penalty_accrued == D("27.73")
    assert pos.installments[1].penalty_accrued == D("10.03")
    assert pos.penalty == D("37.76")
    assert pos.overdue_amount == D("2360")
    assert pos.total_due == D("2397.76")
    assert pos.outstanding_principal == D("3000")
    assert pos.next_due_date == date(2026, 8, 10) and pos.next_due_amount == D("1180")
    assert pos.early_settlement_amount == D("3397.76")
    assert [i.status for i in pos.installments] == ["overdue", "overdue", "pending"]
    assert [i.dpd for i in pos.installments] == [47, 17, 0]
    assert not pos.paid_off
    assert pos.as_contract_dict() == {
        "loan_id": "L001",
        "borrower_id": "B001",
        "as_of": "2026-07-27T12:00:00+08:00",
        "dpd": 47,
        "bucket": "M2",
        "overdue_amount": 2360.0,
        "penalty": 37.76,
        "total_due": 2397.76,
        "outstanding_principal": 3000.0,
        "next_due_date": "2026-08-10",
        "next_due_amount": 1180.0,
        "early_settlement_amount": 3397.76,
        "total_paid": 0.0,
        "unapplied": 0.0,
        "installments": [
            {"seq": 1, "due_date": "2026-06-10", "amount_due": 1180.0, "paid": 0.0,
             "status": "overdue", "dpd": 47, "penalty_accrued": 27.73, "penalty_paid": 0.0},
            {"seq": 2, "due_date": "2026-07-10", "amount_due": 1180.0, "paid": 0.0,
             "status": "overdue", "dpd": 17, "penalty_accrued": 10.03, "penalty_paid": 0.0},
            {"seq": 3, "due_date": "2026-08-10", "amount_due": 1180.0, "paid": 0.0,
             "status": "pending", "dpd": 0, "penalty_accrued": 0.0, "penalty_paid": 0.0},
        ],
    }


def test_due_day_is_not_overdue_and_next_day_accrues_one_day():
    terms = loan(THREE[0])
    on_due = compute_position(terms, [], at("2026-06-10T23:59:59+08:00"))
    assert (on_due.dpd, on_due.bucket, on_due.penalty) == (0, "current", 0)
    assert on_due.installments[0].status == "pending"
    assert on_due.next_due_date == date(2026, 6, 10)
    assert on_due.early_settlement_amount == D("1180")  # interest is due today
    day_after = compute_position(terms, [], at("2026-06-11T00:00:00+08:00"))
    assert (day_after.dpd, day_after.bucket, day_after.penalty) == (1, "M1", D("0.59"))
    assert day_after.next_due_date is None and day_after.next_due_amount == 0


def test_partial_payment_mid_overdue():
    # 06-11..06-19 = 9 days x 0.59 = 5.31 accrued before the 06-20 payment of 500:
    # penalty 5.31, interest 180, principal 314.69 -> 685.31 unpaid.
    # Then 06-20..06-30 = 11 days x 685.31 x 0.0005 = 11 x 0.342655 = 3.769205.
    pos = compute_position(
        loan(THREE[0]), [pay("P1", "500", "2026-06-20T10:00:00+08:00")],
        at("2026-06-30T18:00:00+08:00"),
    )
    i = pos.installments[0]
    assert i.penalty_paid == D("5.31") and i.paid == D("494.69")
    assert i.penalty_accrued == D("9.079205")
    assert pos.penalty == D("3.769205")
    assert pos.overdue_amount == D("685.31")
    assert pos.total_due == D("689.079205")
    assert pos.outstanding_principal == D("685.31")
    assert pos.dpd == 20
    d = pos.as_contract_dict()
    assert (d["penalty"], d["total_due"], d["overdue_amount"]) == (3.77, 689.08, 685.31)


def test_payment_spanning_two_installments_fee_before_interest_before_principal():
    # Before the 07-15 payment: #1 34 days (06-11..07-14) x 0.59 = 20.06,
    # #2 4 days (07-11..07-14) x 0.59 = 2.36.
    # 2,000: #1 penalty 20.06 + 1,180 -> 799.94 left; #2 penalty 2.36, fee 10, interest 170,
    # principal 617.58 -> 382.42 principal unpaid. Then 07-15..07-20 = 6 days x 382.42 x
    # 0.0005 = 1.14726.
    terms = loan(inst(1, "2026-06-10", "1000", "180"), inst(2, "2026-07-10", "1000", "170", "10"))
    pos = compute_position(
        terms, [pay("P1", "2000", "2026-07-15T08:00:00+08:00")], at("2026-07-20T20:00:00+08:00")
    )
    first, second = pos.installments
    assert (first.status, first.paid, first.penalty_paid) == ("paid", D("1180"), D("20.06"))
    assert second.status == "overdue"
    assert second.penalty_paid == D("2.36") and second.paid == D("797.58")
    assert pos.outstanding_principal == D("382.42")
    assert pos.overdue_amount == D("382.42")
    assert pos.penalty == D("1.14726")
    assert pos.dpd == 10 and pos.bucket == "M1"
    # Early settlement: only principal is left and the fee/interest are paid.
    assert pos.early_settlement_amount == D("382.42") + D("1.14726")


def test_days_are_counted_in_the_borrowers_timezone():
    # 2026-06-20 23:30 UTC is 06-21 07:30 in Shanghai, so 10 days (06-11..06-20) have
    # accrued: 5.90 penalty, 180 interest, 314.10 principal -> 685.90 unpaid.
    # as_of 06-30 20:00 New York is 07-01 08:00 Shanghai: dpd 21, and 06-21..07-01 = 11 days
    # x 685.90 x 0.0005 = 11 x 0.34295 = 3.77245. The 09:00 Shanghai payment that day is after as_of.
    payments = [
        pay("P1", "500", "2026-06-20T23:30:00+00:00"),
        pay("P2", "900", "2026-07-01T09:00:00+08:00"),
    ]
    pos = compute_position(loan(THREE[0]), payments, at("2026-06-30T20:00:00-04:00"))
    i = pos.installments[0]
    assert i.penalty_paid == D("5.90") and i.paid == D("494.10")
    assert pos.dpd == 21
    assert pos.penalty == D("3.77245")
    assert pos.total_due == D("689.67245")
    assert pos.total_paid == D("500")
    assert pos.as_contract_dict()["total_due"] == 689.67


def test_prepayment_of_a_future_installment():
    terms = loan(inst(1, "2026-06-10", "1000", "180"), inst(2, "2026-07-10", "1000", "170", "10"))
    pos = compute_position(
        terms, [pay("P1", "1500", "2026-06-05T10:00:00+08:00")], at("2026-06-15T10:00:00+08:00")
    )
    assert [i.status for i in pos.installments] == ["paid", "pending"]
    assert pos.installments[1].paid == D("320")  # fee 10 + interest 170 + principal 140
    assert (pos.dpd, pos.bucket, pos.overdue_amount, pos.penalty) == (0, "current", 0, 0)
    assert pos.next_due_date == date(2026, 7, 10) and pos.next_due_amount == D("860")
    assert pos.outstanding_principal == D("860")
    assert pos.early_settlement_amount == D("860")


def test_overpayment_is_left_unapplied():
    pos = compute_position(
        loan(THREE[0]), [pay("P1", "1300", "2026-06-01T10:00:00+08:00")],
        at("2026-09-01T00:00:00+08:00"),
    )
    assert pos.paid_off
    assert pos.unapplied == D("120") and pos.total_paid == D("1300")
    assert pos.installments[0].status == "paid"
    assert pos.next_due_date is None and pos.next_due_amount == 0
    assert pos.early_settlement_amount == 0 and pos.total_due == 0


def test_payment_on_first_overdue_day_settles_without_penalty():
    # That day's accrual happens after that day's payments.
    pos = compute_position(
        loan(THREE[0]), [pay("P1", "1180", "2026-06-11T21:00:00+08:00")],
        at("2026-06-11T22:00:00+08:00"),
    )
    assert pos.paid_off and pos.penalty == 0 and pos.installments[0].penalty_accrued == 0


def test_payment_exactly_at_as_of_counts_and_later_ones_do_not():
    terms = loan(THREE[0])
    now = "2026-06-10T10:00:00+08:00"
    assert compute_position(terms, [pay("P1", "1180", now)], at(now)).paid_off
    later = pay("P1", "1180", "2026-06-10T10:00:00.000001+08:00")
    assert not compute_position(terms, [later], at(now)).paid_off


def test_half_up_rounding_in_contract_dict():
    assert round_cents(D("2.345")) == D("2.35")
    assert round_cents(D("2.344999")) == D("2.34")
    assert round_cents(D("0.005")) == D("0.01")
    # 10.00 x 0.0005 x 1 day = 0.005 -> reported 0.01
    pos = compute_position(loan(inst(1, "2026-06-10", "10", "0")), [], at("2026-06-11T12:00+08:00"))
    assert pos.penalty == D("0.005") and pos.as_contract_dict()["penalty"] == 0.01


def test_rejects_naive_datetimes_and_negative_payments():
    with pytest.raises(ValueError):
        compute_position(loan(*THREE), [], datetime(2026, 7, 1))
    with pytest.raises(ValueError):
        compute_position(loan(*THREE), [PaymentRecord("P", D(1), datetime(2026, 6, 1))],
                         at("2026-07-01T00:00+08:00"))
    with pytest.raises(ValueError):
        compute_position(loan(*THREE), [pay("P", "-1", "2026-06-01T00:00+08:00")],
                         at("2026-07-01T00:00+08:00"))


def test_fast_constructors_build_ordinary_frozen_dataclasses():
    args = (1, date(2026, 6, 10), D("1180"), D("0"), D("1"), D("0"), "overdue", 3)
    made = _installment_position(*args)
    assert made == InstallmentPosition(*args) and type(made) is InstallmentPosition
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.paid = D(1)  # type: ignore[misc]
    pos = compute_position(loan(*THREE), [], at("2026-07-27T12:00:00+08:00"))
    values = [getattr(pos, f.name) for f in dataclasses.fields(LoanPosition)]
    assert _loan_position(*values) == LoanPosition(*values) == pos
    assert dataclasses.replace(pos, dpd=1).dpd == 1


@pytest.mark.parametrize(
    ("dpd", "bucket"),
    [(0, "current"), (1, "M1"), (30, "M1"), (31, "M2"), (60, "M2"), (61, "M3"), (90, "M3"),
     (91, "M4"), (120, "M4"), (121, "M5"), (150, "M5"), (151, "M6"), (180, "M6"),
     (181, "M6+"), (10_000, "M6+")],
)
def test_bucket_boundaries(dpd: int, bucket: str):
    assert bucket_for(dpd) == bucket


def test_bucket_rejects_negative_dpd():
    with pytest.raises(ValueError):
        bucket_for(-1)


# --- properties ----------------------------------------------------------------------------

ZONES = ["Asia/Shanghai", "America/New_York", "Asia/Kolkata", "Pacific/Auckland", "UTC",
         "America/St_Johns", "Pacific/Kiritimati", "Pacific/Pago_Pago"]
OFFSETS = [UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5)),
           timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=14)),
           timezone(timedelta(hours=-11)), ZoneInfo("America/New_York")]
START = datetime(2026, 1, 1, tzinfo=UTC)

cents = st.integers(0, 300_000).map(lambda c: D(c).scaleb(-2))
rates = st.sampled_from(["0", "0.0005", "0.001", "0.00033", "0.0123"]).map(D)


@st.composite
def instants(draw, lo_days: int = -10, hi_days: int = 330) -> datetime:
    minutes = draw(st.integers(lo_days * 1440, hi_days * 1440))
    return (START + timedelta(minutes=minutes)).astimezone(draw(st.sampled_from(OFFSETS)))


@st.composite
def scenarios(draw) -> tuple[LoanTerms, list[PaymentRecord], datetime]:
    n = draw(st.integers(0, 8))
    due = date(2026, 1, 1) + timedelta(days=draw(st.integers(0, 60)))
    installments = []
    for seq in range(1, n + 1):
        installments.append(InstallmentTerms(seq, due, draw(cents), draw(cents),
                                             draw(st.sampled_from([D(0), D("5"), D("12.5")]))))
        due += timedelta(days=draw(st.sampled_from([0, 1, 15, 30, 31, 45])))
    terms = LoanTerms("L", "B", sum((i.principal for i in installments), D(0)), D("0.18"),
                      draw(rates), date(2025, 12, 1), draw(st.sampled_from(ZONES)),
                      tuple(installments))
    payments = [
        PaymentRecord(f"P{k % 3}", draw(cents), draw(instants()))  # repeated ids: ties
        for k in range(draw(st.integers(0, 8)))
    ]
    return terms, payments, draw(instants(-5, 340))


PROPS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _amounts(pos: LoanPosition) -> list[Decimal]:
    top = [pos.overdue_amount, pos.penalty, pos.total_due, pos.outstanding_principal,
           pos.next_due_amount, pos.early_settlement_amount, pos.total_paid, pos.unapplied]
    for i in pos.installments:
        top += [i.amount_due, i.paid, i.penalty_accrued, i.penalty_paid]
    return top


@PROPS
@given(scenarios())
def test_matches_day_by_day_reference(case):
    assert compute_position(*case) == reference_position(*case)


@PROPS
@given(scenarios())
def test_allocations_add_up_to_payments_made(case):
    terms, payments, as_of = case
    pos = compute_position(terms, payments, as_of)
    made = sum((p.amount for p in payments if p.paid_at <= as_of), D(0))
    allocated = sum((i.paid + i.penalty_paid for i in pos.installments), D(0)) + pos.unapplied
    assert pos.total_paid == made == allocated
    assert pos.total_due == pos.overdue_amount + pos.penalty


@PROPS
@given(scenarios())
def test_no_amount_is_negative_and_statuses_agree(case):
    pos = compute_position(*case)
    assert all(x >= 0 for x in _amounts(pos))
    for i in pos.installments:
        assert i.paid <= i.amount_due and i.penalty_paid <= i.penalty_accrued
        assert (i.status == "overdue") == (i.dpd > 0)
    assert pos.dpd == max((i.dpd for i in pos.installments), default=0)
    assert pos.bucket == bucket_for(pos.dpd)
    assert pos.paid_off == (pos.early_settlement_amount == 0 and pos.next_due_amount == 0
                            and pos.total_due == 0)


@PROPS
@given(scenarios())
def test_paying_total_due_at_as_of_clears_arrears(case):
    terms, payments, as_of = case
    pos = compute_position(terms, payments, as_of)
    settle = PaymentRecord("ZZZ-settle", pos.total_due, as_of)
    after = compute_position(terms, [*payments, settle], as_of)
    assert after.overdue_amount == 0 and after.penalty == 0 and after.dpd == 0
    assert after.bucket == "current"


@PROPS
@given(scenarios(), st.randoms(use_true_random=False))
def test_input_order_does_not_matter(case, rnd: random.Random):
    terms, payments, as_of = case
    shuffled_installments = list(terms.installments)
    rnd.shuffle(shuffled_installments)
    shuffled_payments = list(payments)
    rnd.shuffle(shuffled_payments)
    shuffled = dataclasses.replace(terms, installments=tuple(shuffled_installments))
    assert compute_position(shuffled, iter(shuffled_payments), as_of) == compute_position(
        terms, payments, as_of
    )
