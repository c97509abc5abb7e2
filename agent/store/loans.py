"""Loan records in and out of the database: bulk upsert of portfolio documents, loan terms out."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import String, select, type_coerce
from sqlalchemy.engine import Connection
from sqlmodel import Session

from agent.core.positions import InstallmentTerms, LoanTerms, PaymentRecord
from agent.portfolio import PortfolioDocument
from agent.store.tables import Borrower, ContactConsent, Installment, Loan, Payment, utcnow


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


def existing_ids(session: Session, model: Any, ids: Iterable[str]) -> set[str]:
    wanted = list(set(ids))
    found: set[str] = set()
    for start in range(0, len(wanted), 900):
        chunk = wanted[start : start + 900]
        found.update(session.execute(select(model.id).where(model.id.in_(chunk))).scalars())
    return found


def referenced_unknowns(session: Session, raw: Any, written: tuple[set[str], set[str]] | None = None,
                        ) -> tuple[set[str], set[str]]:
    """Ids the document references but does not define, that already exist in the database.

    ``written`` holds borrower and loan ids this transaction has already written (earlier
    batches of one import); they count as existing without asking the database again.
    """
    if not isinstance(raw, dict):
        return set(), set()

    def ids(section: str, field: str) -> set[str]:
        items = raw.get(section) if isinstance(raw.get(section), list) else []
        return {str(i.get(field)) for i in items if isinstance(i, dict) and i.get(field)}

    borrowers = ids("loans", "borrower_id") - ids("borrowers", "id")
    loans = ids("payments", "loan_id") - ids("loans", "id")
    done_b, done_l = written or (set(), set())
    return ((borrowers & done_b) | existing_ids(session, Borrower, borrowers - done_b),
            (loans & done_l) | existing_ids(session, Loan, loans - done_l))


_BORROWER_COLS = ("id", "name", "phone", "timezone", "emergency_contacts", "ability", "updated_at")
_LOAN_COLS = ("id", "borrower_id", "principal", "annual_rate", "penalty_rate_daily",
              "disbursed_on", "updated_at")
_INSTALLMENT_COLS = ("loan_id", "seq", "due_date", "principal", "interest", "fee")
_PAYMENT_COLS = ("id", "loan_id", "amount", "paid_at", "channel")
# Columns an upsert leaves alone on an existing row (a borrower's ability tier is ours, not the
# lender's); they are only written when the row is new.
_KEEP_ON_UPDATE = {"id", "ability"}


def upsert_document(session: Session, doc: PortfolioDocument) -> UpsertCounts:
    """Idempotent by the lender's ids; a loan's schedule is replaced by the one sent.

    Rows go straight to the driver (``executemany`` on SQLite, ``COPY`` on PostgreSQL) inside
    the session's transaction, converted the way the column types would convert them.
    """
    connection = session.connection()
    write = _write_postgresql if connection.dialect.name == "postgresql" else _write_sqlite
    write(connection, doc, utcnow())
    _upsert_consents(session, doc)
    loans = doc["loans"]
    return UpsertCounts(len(doc["borrowers"]), len(loans),
                        sum(len(loan["installments"]) for loan in loans), len(doc["payments"]))


def phone_key(phone: str) -> str:
    """A number as dialled: digits only (a leading + kept), so 138-1234 5678 is 13812345678."""
    digits = "".join(c for c in phone if c.isdigit())
    return f"+{digits}" if phone.strip().startswith("+") else digits


def _upsert_consents(session: Session, doc: PortfolioDocument) -> None:
    """Consents by (borrower, kind, number); rare, so through the ORM, after the borrowers."""
    sent = [(b["id"], c) for b in doc["borrowers"] for c in b.get("consents", ())]
    if not sent:
        return
    stored = {(c.borrower_id, c.kind, c.phone): c for c in session.execute(
        select(ContactConsent).where(ContactConsent.borrower_id.in_({b for b, _ in sent}))
    ).scalars()}
    for borrower_id, consent in sent:
        key = (borrower_id, consent["kind"], phone_key(consent["phone"]))
        row = stored.get(key) or ContactConsent(borrower_id=key[0], kind=key[1], phone=key[2],
                                                given_at=consent["given_at"])
        row.given_at = consent["given_at"]
        row.revoked_at = consent.get("revoked_at")
        row.source = consent.get("source")
        row.updated_at = utcnow()
        stored[key] = row
        session.add(row)
    session.flush()


def _upsert_sql(table: str, columns: Sequence[str], source: str) -> str:
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in _KEEP_ON_UPDATE)
    return (f"INSERT INTO {table} ({', '.join(columns)}) {source} "
            f"ON CONFLICT (id) DO UPDATE SET {updates}")


def _write_sqlite(connection: Connection, doc: PortfolioDocument, now: datetime) -> None:
    """Rows as ExactDecimal (text), Date (ISO text) and UTCDateTime (naive UTC text) store them."""

    # A portfolio repeats the same few thousand dates and payment instants; each is converted
    # once. Equal aware datetimes are the same instant, so they share one UTC text.
    days: dict[date, str] = {}
    stamps: dict[datetime, str] = {}

    def day(value: date) -> str:
        text = days.get(value)
        if text is None:
            text = days[value] = value.isoformat()
        return text

    # ``astimezone(UTC)`` would ask the tzinfo twice; one ``utcoffset`` gives the same instant.
    def stamp(moment: datetime) -> str:
        text = stamps.get(moment)
        if text is None:
            text = stamps[moment] = (moment.replace(tzinfo=None) - moment.utcoffset()
                                     ).isoformat(" ", "microseconds")
        return text

    def run(table: str, columns: Sequence[str], rows: list[tuple], upsert: bool = True) -> None:
        if not rows:
            return
        values = f"VALUES ({', '.join('?' * len(columns))})"
        sql = (_upsert_sql(table, columns, values) if upsert
               else f"INSERT INTO {table} ({', '.join(columns)}) {values}")
        connection.exec_driver_sql(sql, rows)

    updated, dumps, loans = stamp(now), json.dumps, doc["loans"]
    run("borrowers", _BORROWER_COLS, [
        (b["id"], b["name"], b["phone"], b["timezone"], dumps(b["emergency_contacts"]), "normal",
         updated) for b in doc["borrowers"]])
    run("loans", _LOAN_COLS, [
        (loan["id"], loan["borrower_id"], str(loan["principal"]), str(loan["annual_rate"]),
         str(loan["penalty_rate_daily"]), day(loan["disbursed_on"]), updated)
        for loan in loans])
    for start in range(0, len(loans), 900):
        chunk = tuple(loan["id"] for loan in loans[start:start + 900])
        connection.exec_driver_sql(
            f"DELETE FROM installments WHERE loan_id IN ({', '.join('?' * len(chunk))})", chunk)
    run("installments", _INSTALLMENT_COLS, [
        (loan_id, i["seq"], day(i["due_date"]), str(i["principal"]), str(i["interest"]),
         str(i["fee"]))
        for loan in loans for loan_id in (loan["id"],) for i in loan["installments"]], upsert=False)
    run("payments", _PAYMENT_COLS, [
        (p["id"], p["loan_id"], str(p["amount"]), stamp(p["paid_at"]), p["channel"])
        for p in doc["payments"]])


# Rows an import wrote whose reference has no target: (table, id, column, missing target id).
# ``json_each`` takes the whole id list as one parameter, so each table is one query.
# Installments need none: each is written right after its own loan, in the same transaction.
_DANGLING = (
    ("loans", "borrower_id",
     "SELECT l.id, l.borrower_id FROM loans AS l WHERE l.id IN (SELECT value FROM json_each(?)) "
     "AND NOT EXISTS (SELECT 1 FROM borrowers AS b WHERE b.id = l.borrower_id) LIMIT 50"),
    ("payments", "loan_id",
     "SELECT p.id, p.loan_id FROM payments AS p WHERE p.id IN (SELECT value FROM json_each(?)) "
     "AND NOT EXISTS (SELECT 1 FROM loans AS l WHERE l.id = p.loan_id) LIMIT 50"),
)


def dangling_references(session: Session, loan_ids: Iterable[str], payment_ids: Iterable[str],
                        ) -> list[tuple[str, str, str, str]]:
    """Foreign keys an import wrote on SQLite without enforcement, checked after the fact."""
    connection = session.connection()
    ids = {"loans": json.dumps(list(loan_ids)), "payments": json.dumps(list(payment_ids))}
    found = []
    for section, field, sql in _DANGLING:
        for item_id, target in connection.exec_driver_sql(sql, (ids[section],)):
            found.append((section, item_id, field, target))
    return found


def _write_postgresql(connection: Connection, doc: PortfolioDocument, now: datetime) -> None:
    """``COPY`` rows in: straight into installments, via a staging table for the upserts."""
    cursor = connection.connection.cursor()  # the psycopg cursor, in the session's transaction

    def copy(table: str, columns: Sequence[str], rows: Iterable[tuple]) -> None:
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as out:
            for row in rows:
                out.write_row(row)

    def upsert(table: str, columns: Sequence[str], rows: list[tuple]) -> None:
        if not rows:
            return
        staging = f"_import_{table}"
        cursor.execute(f"CREATE TEMP TABLE {staging} (LIKE {table}) ON COMMIT DROP")
        copy(staging, columns, rows)
        # Rows locked in key order: two imports touching the same ids wait, never deadlock.
        cursor.execute(_upsert_sql(table, columns,
                                   f"SELECT {', '.join(columns)} FROM {staging} ORDER BY id"))
        cursor.execute(f"DROP TABLE {staging}")

    dumps, loans = json.dumps, doc["loans"]
    try:
        upsert("borrowers", _BORROWER_COLS, [
            (b["id"], b["name"], b["phone"], b["timezone"], dumps(b["emergency_contacts"]),
             "normal", now) for b in doc["borrowers"]])
        upsert("loans", _LOAN_COLS, [
            (loan["id"], loan["borrower_id"], loan["principal"], loan["annual_rate"],
             loan["penalty_rate_daily"], loan["disbursed_on"], now) for loan in loans])
        if loans:
            cursor.execute("DELETE FROM installments WHERE id IN (SELECT id FROM installments"
                           " WHERE loan_id = ANY(%s) ORDER BY loan_id, seq FOR UPDATE)",
                           ([loan["id"] for loan in loans],))
            copy("installments", _INSTALLMENT_COLS, (
                (loan_id, i["seq"], i["due_date"], i["principal"], i["interest"], i["fee"])
                for loan in loans for loan_id in (loan["id"],) for i in loan["installments"]))
        upsert("payments", _PAYMENT_COLS, [
            (p["id"], p["loan_id"], p["amount"], p["paid_at"].astimezone(UTC), p["channel"])
            for p in doc["payments"]])
    finally:
        cursor.close()


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


@dataclass(frozen=True, slots=True)
class LoanSummary:
    """The loan columns portfolio planning reads (``iter_loans``), without an ORM object."""

    id: str
    borrower_id: str
    paused_reason: str | None


@dataclass(frozen=True, slots=True)
class BorrowerSummary:
    id: str
    timezone: str
    ability: str
    phone: str


def _column_readers(dialect: str) -> tuple[Any, Any, Any, Any]:
    """How to select exact decimals, dates and UTC datetimes on this dialect, and, indexed by
    the selected value, what to convert them to.

    On SQLite they are stored as text: selected raw, each distinct text parsed once (a
    portfolio repeats the same amounts and dates endlessly). Elsewhere the driver's own
    values are already right.
    """
    if dialect != "sqlite":
        return (lambda column: column), _Same(), _Same(), _AsUTC()

    def raw(column: Any) -> Any:
        return type_coerce(column, String())

    return raw, _Parsed(Decimal), _Parsed(date.fromisoformat), _Parsed(_utc_text)


class _Parsed(dict[Any, Any]):
    """``parsed[text]``: each distinct stored text converted once (a dict lookup after that)."""

    def __init__(self, parse: Any) -> None:
        super().__init__()
        self.parse = parse

    def __missing__(self, text: str) -> Any:
        value = self[text] = self.parse(text)
        return value


class _Same:
    def __getitem__(self, value: Any) -> Any:
        return value


class _AsUTC:
    def __getitem__(self, value: datetime) -> datetime:
        return value if value.tzinfo is UTC else value.astimezone(UTC)


def _utc_text(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def iter_loans(session: Session, batch: int = 5000,
               ) -> Iterator[tuple[LoanSummary, BorrowerSummary, LoanTerms, list[PaymentRecord]]]:
    """Every loan with its borrower, terms and payments, fetched in batches (portfolio planning).

    Plain Core rows throughout, only the columns planning needs: no ORM objects, no identity
    map, each stored text parsed once.
    """
    connection = session.connection()  # Core execution: no ORM result machinery per row
    raw, money, day, stamp = _column_readers(connection.dialect.name)
    loans_q = (select(Loan.id, Loan.borrower_id, raw(Loan.principal), raw(Loan.annual_rate),
                      raw(Loan.penalty_rate_daily), raw(Loan.disbursed_on), Loan.paused_reason,
                      Borrower.timezone, Borrower.ability, Borrower.phone)
               .join(Borrower, Borrower.id == Loan.borrower_id).order_by(Loan.id).limit(batch))
    installments_q = select(Installment.loan_id, Installment.seq, raw(Installment.due_date),
                            raw(Installment.principal), raw(Installment.interest),
                            raw(Installment.fee))
    payments_q = select(Payment.loan_id, Payment.id, raw(Payment.amount), raw(Payment.paid_at))
    borrowers: dict[tuple[str, str, str, str], BorrowerSummary] = {}
    last_id = ""
    while True:
        rows = connection.execute(loans_q.where(Loan.id > last_id)).all()
        if not rows:
            return
        ids = [row[0] for row in rows]
        installments: dict[str, list[InstallmentTerms]] = defaultdict(list)
        for loan_id, seq, due, principal, interest, fee in connection.execute(
                installments_q.where(Installment.loan_id.in_(ids))).all():
            installments[loan_id].append(
                InstallmentTerms(seq, day[due], money[principal], money[interest], money[fee]))
        payments: dict[str, list[PaymentRecord]] = defaultdict(list)
        for loan_id, payment_id, amount, paid_at in connection.execute(
                payments_q.where(Payment.loan_id.in_(ids))).all():
            payments[loan_id].append(PaymentRecord(payment_id, money[amount], stamp[paid_at]))
        for (loan_id, borrower_id, principal, rate, penalty, disbursed, paused, timezone,
             ability, phone) in rows:
            key = (borrower_id, timezone, ability, phone)
            borrower = borrowers.get(key)
            if borrower is None:
                borrower = borrowers[key] = BorrowerSummary(borrower_id, timezone, ability, phone)
            terms = LoanTerms(
                loan_id=loan_id, borrower_id=borrower_id, principal=money[principal],
                annual_rate=money[rate], penalty_rate_daily=money[penalty],
                disbursed_on=day[disbursed], timezone=timezone,
                installments=tuple(sorted(installments[loan_id], key=_by_seq)),
            )
            yield LoanSummary(loan_id, borrower_id, paused), borrower, terms, payments[loan_id]
        last_id = ids[-1]
        # Bounded memory on a huge book: caches start afresh once they grow large.
        for cache in (borrowers, money, day, stamp):
            if isinstance(cache, dict) and len(cache) > 100_000:
                cache.clear()


def _by_seq(terms: InstallmentTerms) -> int:
    return terms.seq
