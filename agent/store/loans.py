"""Loan records in and out of the database: bulk upsert of portfolio documents, loan terms out."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from agent.core.positions import InstallmentTerms, LoanTerms, PaymentRecord
from agent.portfolio import PortfolioDocument
from agent.store.tables import Borrower, Installment, Loan, Payment, utcnow

BATCH = 2000


@dataclass
class UpsertCounts:
    borrowers: int = 0
    loans: int = 0
    installments: int = 0
    payments: int = 0

    def add(self, other: UpsertCounts) -> None:
        self.borrowers += other.borrowers
        self.loans += other.loans
        self.installments += other.installments
        self.payments += other.payments

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def _chunks(rows: Sequence[dict[str, Any]], size: int = BATCH) -> Iterator[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _upsert(session: Session, table: Any, rows: Sequence[dict[str, Any]], key: str) -> None:
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    for chunk in _chunks(rows):
        statement = insert(table)
        updates = {c: statement.excluded[c] for c in chunk[0] if c != key}
        session.execute(statement.on_conflict_do_update(index_elements=[key], set_=updates), chunk)


def existing_ids(session: Session, model: Any, ids: Iterable[str]) -> set[str]:
    wanted = list(set(ids))
    found: set[str] = set()
    for start in range(0, len(wanted), 900):
        chunk = wanted[start : start + 900]
        found.update(session.execute(select(model.id).where(model.id.in_(chunk))).scalars())
    return found


def referenced_unknowns(session: Session, raw: Any) -> tuple[set[str], set[str]]:
    """Ids the document references but does not define, that already exist in the database."""
    if not isinstance(raw, dict):
        return set(), set()

    def ids(section: str, field: str) -> set[str]:
        items = raw.get(section) if isinstance(raw.get(section), list) else []
        return {str(i.get(field)) for i in items if isinstance(i, dict) and i.get(field)}

    borrowers = ids("loans", "borrower_id") - ids("borrowers", "id")
    loans = ids("payments", "loan_id") - ids("loans", "id")
    return existing_ids(session, Borrower, borrowers), existing_ids(session, Loan, loans)


def upsert_document(session: Session, doc: PortfolioDocument) -> UpsertCounts:
    """Idempotent by the lender's ids; a loan's schedule is replaced by the one sent."""
    now = utcnow()
    _upsert(session, Borrower.__table__, [
        {"id": b.id, "name": b.name, "phone": b.phone, "timezone": b.timezone,
         "emergency_contacts": [c.model_dump() for c in b.emergency_contacts], "updated_at": now}
        for b in doc.borrowers
    ], "id")
    _upsert(session, Loan.__table__, [
        {"id": loan.id, "borrower_id": loan.borrower_id, "principal": loan.principal,
         "annual_rate": loan.annual_rate, "penalty_rate_daily": loan.penalty_rate_daily,
         "disbursed_on": loan.disbursed_on, "updated_at": now}
        for loan in doc.loans
    ], "id")
    loan_ids = [loan.id for loan in doc.loans]
    for start in range(0, len(loan_ids), 900):
        session.execute(delete(Installment).where(Installment.loan_id.in_(loan_ids[start:start + 900])))
    installment_rows = [
        {"loan_id": loan.id, "seq": i.seq, "due_date": i.due_date, "principal": i.principal,
         "interest": i.interest, "fee": i.fee}
        for loan in doc.loans for i in loan.installments
    ]
    for chunk in _chunks(installment_rows, 5000):
        session.execute(Installment.__table__.insert(), chunk)
    _upsert(session, Payment.__table__, [
        {"id": p.id, "loan_id": p.loan_id, "amount": p.amount,
         "paid_at": p.paid_at.astimezone(UTC), "channel": p.channel}
        for p in doc.payments
    ], "id")
    return UpsertCounts(len(doc.borrowers), len(doc.loans), len(installment_rows), len(doc.payments))


def _terms(loan: Loan, timezone: str, installments: Iterable[Installment]) -> LoanTerms:
    return LoanTerms(
        loan_id=loan.id, borrower_id=loan.borrower_id, principal=loan.principal,
        annual_rate=loan.annual_rate, penalty_rate_daily=loan.penalty_rate_daily,
        disbursed_on=loan.disbursed_on, timezone=timezone,
        installments=tuple(
            InstallmentTerms(seq=i.seq, due_date=i.due_date, principal=i.principal,
                             interest=i.interest, fee=i.fee)
            for i in sorted(installments, key=lambda i: i.seq)
        ),
    )


def _payment_record(p: Payment) -> PaymentRecord:
    return PaymentRecord(payment_id=p.id, amount=p.amount, paid_at=p.paid_at)


def load_loan(session: Session, loan_id: str) -> tuple[LoanTerms, list[PaymentRecord]] | None:
    loan = session.get(Loan, loan_id)
    if loan is None:
        return None
    borrower = session.get(Borrower, loan.borrower_id)
    installments = session.execute(select(Installment).where(Installment.loan_id == loan_id)).scalars()
    payments = session.execute(select(Payment).where(Payment.loan_id == loan_id)).scalars()
    timezone = borrower.timezone if borrower else "Asia/Shanghai"
    return _terms(loan, timezone, installments), [_payment_record(p) for p in payments]


def iter_loans(session: Session, batch: int = 5000) -> Iterator[tuple[Loan, Borrower, LoanTerms, list[PaymentRecord]]]:
    """Every loan with its borrower, terms and payments, fetched in batches (portfolio planning)."""
    last_id = ""
    while True:
        rows = session.execute(
            select(Loan, Borrower).join(Borrower, Borrower.id == Loan.borrower_id)
            .where(Loan.id > last_id).order_by(Loan.id).limit(batch)
        ).all()
        if not rows:
            return
        ids = [loan.id for loan, _ in rows]
        installments: dict[str, list[Installment]] = defaultdict(list)
        for inst in session.execute(select(Installment).where(Installment.loan_id.in_(ids))).scalars():
            installments[inst.loan_id].append(inst)
        payments: dict[str, list[PaymentRecord]] = defaultdict(list)
        for pay in session.execute(select(Payment).where(Payment.loan_id.in_(ids))).scalars():
            payments[pay.loan_id].append(_payment_record(pay))
        for loan, borrower in rows:
            yield loan, borrower, _terms(loan, borrower.timezone, installments[loan.id]), payments[loan.id]
        last_id = ids[-1]
