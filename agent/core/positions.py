"""Loan position engine: what a borrower owes at a given moment.

Pure and standard-library only, so the API, contact planning and dialogue all
derive balances from one place. The rules are the contract's ("Loan records" in
spec/api-contract.md): calendar days in the borrower's timezone, payments applied
oldest installment first (penalty, fee, interest, principal), and penalty accruing
on each overdue day after that day's payments, the as-of day included.

Penalty is accrued lazily between events (payments, due dates, as-of) as
``base x rate x days`` rather than day by day: an installment's unpaid base only
changes when a payment reaches it, and every such touch first brings its penalty
up to date, so the sum over days collapses into one product per touch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from operator import attrgetter
from zoneinfo import ZoneInfo

__all__ = [
    "InstallmentPosition",
    "InstallmentTerms",
    "LoanPosition",
    "LoanTerms",
    "PaymentRecord",
    "bucket_for",
    "compute_position",
    "round_cents",
]

PAID = "paid"
OVERDUE = "overdue"
PENDING = "pending"

_ZERO = Decimal(0)
_CENT = Decimal("0.01")
# Wide enough that sums and products of realistic money amounts and rates stay
# exact whatever context the caller runs under.
_EXACT = Context(prec=60, rounding=ROUND_HALF_UP)
_BUCKETS = ("current", "M1", "M2", "M3", "M4", "M5", "M6")
_ZONES: dict[str, ZoneInfo] = {}


@dataclass(frozen=True, slots=True)
class InstallmentTerms:
    seq: int
    due_date: date
    principal: Decimal
    interest: Decimal
    fee: Decimal


@dataclass(frozen=True, slots=True)
class PaymentRecord:
    payment_id: str
    amount: Decimal
    paid_at: datetime  # aware


@dataclass(frozen=True, slots=True)
class LoanTerms:
    loan_id: str
    borrower_id: str
    principal: Decimal
    annual_rate: Decimal
    penalty_rate_daily: Decimal
    disbursed_on: date
    timezone: str  # IANA name, e.g. "Asia/Shanghai"
    installments: tuple[InstallmentTerms, ...]


@dataclass(frozen=True, slots=True)
class InstallmentPosition:
    seq: int
    due_date: date
    amount_due: Decimal  # principal + interest + fee
    paid: Decimal  # applied to principal + interest + fee, penalty excluded
    penalty_accrued: Decimal
    penalty_paid: Decimal
    status: str  # "paid" | "overdue" | "pending"
    dpd: int


@dataclass(frozen=True, slots=True)
class LoanPosition:
    loan_id: str
    borrower_id: str
    as_of: datetime
    dpd: int
    bucket: str
    overdue_amount: Decimal
    penalty: Decimal
    total_due: Decimal
    outstanding_principal: Decimal
    next_due_date: date | None
    next_due_amount: Decimal
    early_settlement_amount: Decimal  # unpaid principal + due fees/interest + penalty
    total_paid: Decimal
    unapplied: Decimal  # overpayment left once everything is paid
    installments: tuple[InstallmentPosition, ...]

    @property
    def paid_off(self) -> bool:
        """True when no installment has anything (penalty included) left unpaid."""
        return all(inst.status == PAID for inst in self.installments)

    def as_contract_dict(self) -> dict:
        """The contract's JSON shape; rounding happens here and nowhere else."""
        return {
            "loan_id": self.loan_id,
            "borrower_id": self.borrower_id,
            "as_of": self.as_of.isoformat(),
            "dpd": self.dpd,
            "bucket": self.bucket,
            "overdue_amount": _money(self.overdue_amount),
            "penalty": _money(self.penalty),
            "total_due": _money(self.total_due),
            "outstanding_principal": _money(self.outstanding_principal),
            "next_due_date": (
                self.next_due_date.isoformat() if self.next_due_date is not None else None
            ),
            "next_due_amount": _money(self.next_due_amount),
            "early_settlement_amount": _money(self.early_settlement_amount),
            "total_paid": _money(self.total_paid),
            "unapplied": _money(self.unapplied),
            "installments": [
                {
                    "seq": inst.seq,
                    "due_date": inst.due_date.isoformat(),
                    "amount_due": _money(inst.amount_due),
                    "paid": _money(inst.paid),
                    "status": inst.status,
                    "dpd": inst.dpd,
                    "penalty_accrued": _money(inst.penalty_accrued),
                    "penalty_paid": _money(inst.penalty_paid),
                }
                for inst in self.installments
            ],
        }


def round_cents(x: Decimal) -> Decimal:
    """Half-up, not banker's rounding: the contract reports amounts that way."""
    return x.quantize(_CENT, rounding=ROUND_HALF_UP, context=_EXACT)


def _money(x: Decimal) -> float:
    return float(round_cents(x))


def bucket_for(dpd: int) -> str:
    """Collections bucket: 30-day bands, everything past 180 days pooled as M6+."""
    if dpd < 0:
        raise ValueError(f"dpd must be >= 0, got {dpd}")
    if dpd > 180:
        return "M6+"
    return _BUCKETS[(dpd + 29) // 30]


def _zone(name: str) -> ZoneInfo:
    zone = _ZONES.get(name)
    if zone is None:
        zone = _ZONES[name] = ZoneInfo(name)
    return zone


_by_due = attrgetter("due_date", "seq")
_by_seq = attrgetter("seq")
_by_time = attrgetter("paid_at", "payment_id", "amount")  # amount: duplicate ids sort stably
_new = object.__new__
_ip = {name: getattr(InstallmentPosition, name).__set__ for name in InstallmentPosition.__slots__}
_lp_setters = tuple(getattr(LoanPosition, name).__set__ for name in LoanPosition.__slots__)
_ip_seq, _ip_due, _ip_amount, _ip_paid = _ip["seq"], _ip["due_date"], _ip["amount_due"], _ip["paid"]
_ip_pacc, _ip_ppaid, _ip_status, _ip_dpd = (
    _ip["penalty_accrued"],
    _ip["penalty_paid"],
    _ip["status"],
    _ip["dpd"],
)


def _installment_position(
    seq: int,
    due_date: date,
    amount_due: Decimal,
    paid: Decimal,
    penalty_accrued: Decimal,
    penalty_paid: Decimal,
    status: str,
    dpd: int,
) -> InstallmentPosition:
    """Same object as ``InstallmentPosition(...)`` at under half the cost.

    The generated frozen ``__init__`` routes each field through
    ``object.__setattr__``; setting the slots directly skips that, which counts at
    a dozen objects per loan and tens of thousands of loans per planning pass.
    """
    obj = _new(InstallmentPosition)
    _ip_seq(obj, seq)
    _ip_due(obj, due_date)
    _ip_amount(obj, amount_due)
    _ip_paid(obj, paid)
    _ip_pacc(obj, penalty_accrued)
    _ip_ppaid(obj, penalty_paid)
    _ip_status(obj, status)
    _ip_dpd(obj, dpd)
    return obj


def _loan_position(*values: object) -> LoanPosition:
    """``LoanPosition(*values)`` without the frozen-``__init__`` toll (see above)."""
    obj = _new(LoanPosition)
    for put, value in zip(_lp_setters, values, strict=True):
        put(obj, value)
    return obj


def compute_position(
    loan: LoanTerms, payments: Iterable[PaymentRecord], as_of: datetime
) -> LoanPosition:
    """Position of ``loan`` at ``as_of`` given every payment known (later ones are ignored).

    Allocation keeps explicit state only for the one installment a payment can be
    part-way through: those before it are settled for good (a settled installment
    has no base left to accrue on) and those after it are untouched, so their
    state is still their terms.
    """
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise ValueError("as_of must be timezone-aware")
    zone = _zone(loan.timezone)
    today = as_of.astimezone(zone).toordinal()
    rate = loan.penalty_rate_daily
    terms = sorted(loan.installments, key=_by_due)
    n = len(terms)
    due = [t.due_date.toordinal() for t in terms]

    with localcontext(_EXACT):
        amount_due = [t.principal + t.interest + t.fee for t in terms]
        made = []
        for p in payments:
            if p.paid_at.tzinfo is None:
                raise ValueError(f"payment {p.payment_id}: paid_at must be timezone-aware")
            if p.amount < 0:
                raise ValueError(f"payment {p.payment_id}: amount must be >= 0")
            if p.paid_at <= as_of:
                made.append(p)
        made.sort(key=_by_time)

        total_paid = _ZERO
        unapplied = _ZERO
        settled_penalty: list[Decimal] = []  # penalty accrued (= paid) per settled installment
        i = 0  # the current installment: oldest with anything unpaid
        while i < n and not amount_due[i]:
            settled_penalty.append(_ZERO)
            i += 1
        if i < n:
            cur = terms[i]
            fee, interest, principal = cur.fee, cur.interest, cur.principal
            base = amount_due[i]  # its unpaid principal + interest + fee
            acc = pen_paid = _ZERO
            accrued_to = due[i]  # penalty accrued through this day; none up to the due date

        for p in made:
            rem = p.amount
            total_paid += rem
            if i == n:
                unapplied += rem
                continue
            # Penalty owed at a payment covers the days before it: a day's accrual
            # happens after all of that day's payments.
            before = p.paid_at.astimezone(zone).toordinal() - 1
            while rem:
                if before > accrued_to:
                    acc += base * rate * (before - accrued_to)
                    accrued_to = before
                owed = acc - pen_paid
                if owed:
                    take = owed if rem >= owed else rem
                    pen_paid += take
                    rem -= take
                if rem and fee:
                    take = fee if rem >= fee else rem
                    fee -= take
                    base -= take
                    rem -= take
                if rem and interest:
                    take = interest if rem >= interest else rem
                    interest -= take
                    base -= take
                    rem -= take
                if rem and principal:
                    take = principal if rem >= principal else rem
                    principal -= take
                    base -= take
                    rem -= take
                if base:
                    break  # money ran out inside this installment
                # Base reached zero, so its penalty was paid first: settled.
                settled_penalty.append(acc)
                i += 1
                while i < n and not amount_due[i]:
                    settled_penalty.append(_ZERO)
                    i += 1
                if i == n:
                    break
                cur = terms[i]
                fee, interest, principal = cur.fee, cur.interest, cur.principal
                base = amount_due[i]
                acc = pen_paid = _ZERO
                accrued_to = due[i]
            unapplied += rem

        positions = []
        for t, amount, pen in zip(terms[:i], amount_due, settled_penalty, strict=False):
            positions.append(
                _installment_position(t.seq, t.due_date, amount, amount, pen, pen, PAID, 0)
            )
        overdue_amount = _ZERO
        penalty = _ZERO
        outstanding = _ZERO
        settlement = _ZERO  # due-or-past fees and interest still unpaid
        next_due = 0
        next_due_amount = _ZERO
        dpd = 0
        if i < n:
            d = due[i]
            if today > accrued_to:
                acc += base * rate * (today - accrued_to)
            if d < today:
                status = OVERDUE
                dpd = today - d
                overdue_amount = base
            else:
                status = PENDING
                next_due = d
                next_due_amount = base
            penalty = acc - pen_paid
            outstanding = principal
            if d <= today:
                settlement = fee + interest
            positions.append(
                _installment_position(
                    cur.seq,
                    cur.due_date,
                    amount_due[i],
                    amount_due[i] - base,
                    acc,
                    pen_paid,
                    status,
                    dpd,
                )
            )
        j = i + 1
        for t, d, base in zip(terms[j:], due[j:], amount_due[j:], strict=True):
            acc = _ZERO
            inst_dpd = 0
            if not base:
                status = PAID
            elif d < today:
                status = OVERDUE
                inst_dpd = today - d
                if inst_dpd > dpd:  # only if unsorted input slipped through; kept for safety
                    dpd = inst_dpd
                acc = base * rate * inst_dpd
                penalty += acc
                overdue_amount += base
                settlement += t.fee + t.interest
            else:
                status = PENDING
                if not next_due:
                    next_due = d
                if d == next_due:
                    next_due_amount += base
                if d == today:
                    settlement += t.fee + t.interest
            outstanding += t.principal
            positions.append(
                _installment_position(
                    t.seq, t.due_date, base, _ZERO, acc, _ZERO, status, inst_dpd
                )
            )
        positions.sort(key=_by_seq)
        settlement += outstanding + penalty
        total_due = overdue_amount + penalty

    return _loan_position(
        loan.loan_id,
        loan.borrower_id,
        as_of,
        dpd,
        bucket_for(dpd),
        overdue_amount,
        penalty,
        total_due,
        outstanding,
        date.fromordinal(next_due) if next_due else None,
        next_due_amount,
        settlement,
        total_paid,
        unapplied,
        tuple(positions),
    )
