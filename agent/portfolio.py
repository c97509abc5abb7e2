"""The lender's portfolio document: validation with errors that name the item and the field.

Shared by ``POST /api/v1/portfolio`` and ``huikuan import``; a document with any invalid item is
rejected whole, so callers validate everything before writing anything.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

Money = Annotated[Decimal, Field(ge=0, allow_inf_nan=False, max_digits=18, decimal_places=6)]
Rate = Annotated[Decimal, Field(ge=0, le=10, allow_inf_nan=False)]
Ident = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]


class _Item(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class EmergencyContactIn(_Item):
    name: str = Field(min_length=1, max_length=100)
    phone: str = Field(min_length=3, max_length=32)
    relation: str = Field(default="other", max_length=32)


class BorrowerIn(_Item):
    id: Ident
    name: str = Field(min_length=1, max_length=100)
    phone: str = Field(min_length=3, max_length=32, pattern=r"^\+?[0-9 \-]{3,32}$")
    timezone: str = "Asia/Shanghai"
    emergency_contacts: list[EmergencyContactIn] = Field(default_factory=list, max_length=20)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA timezone {value!r}") from exc
        return value


class InstallmentIn(_Item):
    seq: int = Field(ge=1, le=1000)
    due_date: date
    principal: Money
    interest: Money = Decimal(0)
    fee: Money = Decimal(0)


class LoanIn(_Item):
    id: Ident
    borrower_id: Ident
    principal: Money
    annual_rate: Rate = Decimal(0)
    penalty_rate_daily: Rate = Decimal(0)
    disbursed_on: date
    installments: list[InstallmentIn] = Field(min_length=1, max_length=1000)


class PaymentIn(_Item):
    id: Ident
    loan_id: Ident
    amount: Money
    paid_at: datetime
    channel: str | None = Field(default=None, max_length=32)

    @field_validator("paid_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("paid_at needs a UTC offset, e.g. 2026-06-10T09:30:00+08:00")
        return value

    @field_validator("amount")
    @classmethod
    def _positive(cls, value: Decimal) -> Decimal:
        if value <= 0:
            raise ValueError("payment amount must be greater than 0")
        return value


class PortfolioDocument(_Item):
    borrowers: list[BorrowerIn] = Field(default_factory=list)
    loans: list[LoanIn] = Field(default_factory=list)
    payments: list[PaymentIn] = Field(default_factory=list)


class PortfolioError(ValueError):
    """An invalid document; ``errors`` lists every problem as ``{"item", "field", "message"}``."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        self.errors = errors
        first = errors[0]
        where = " ".join(p for p in (first.get("item"), first.get("field")) if p)
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{where}: {first['message']}{more}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid JSON number")


def parse_json(raw: bytes | str) -> Any:
    """Strict JSON: NaN/Infinity refused, floats kept exact as Decimal."""
    try:
        return json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise PortfolioError([{"item": "", "field": "", "message": "body is not UTF-8"}]) from exc
    except ValueError as exc:
        raise PortfolioError(
            [{"item": "", "field": "", "message": f"malformed JSON: {exc}"}]
        ) from exc


def _describe_location(raw: Any, loc: tuple[Any, ...]) -> tuple[str, str]:
    """Turn ('loans', 3, 'installments', 0, 'seq') into ('loans[3] (id=L4)', 'installments[0].seq')."""
    if not loc:
        return "", ""
    if len(loc) == 1 or not isinstance(loc[1], int):
        return "", ".".join(str(p) for p in loc)
    section, index = loc[0], loc[1]
    item = f"{section}[{index}]"
    try:
        item_id = raw[section][index].get("id")
        if item_id is not None:
            item += f" (id={item_id})"
    except (KeyError, IndexError, TypeError, AttributeError):
        pass
    field = ""
    for part in loc[2:]:
        field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
    return item, field


def validate_document(raw: Any, known_borrowers: set[str] | None = None,
                      known_loans: set[str] | None = None) -> PortfolioDocument:
    """Validate shapes, then cross-item rules; raise PortfolioError naming every bad item."""
    if not isinstance(raw, dict):
        raise PortfolioError([{"item": "", "field": "", "message": "document must be a JSON object"}])
    for section in ("borrowers", "loans", "payments"):
        if section in raw and not isinstance(raw[section], list):
            raise PortfolioError([{"item": section, "field": "", "message": "must be a list"}])
    try:
        doc = PortfolioDocument.model_validate(raw)
    except ValidationError as exc:
        errors = []
        for err in exc.errors(include_url=False)[:50]:
            item, field = _describe_location(raw, tuple(err["loc"]))
            value = err.get("input")
            detail = err["msg"]
            if not isinstance(value, dict | list) and value is not None:
                detail += f" (got {value!r})"
            errors.append({"item": item, "field": field, "message": detail})
        raise PortfolioError(errors) from None
    errors = cross_check(doc, known_borrowers or set(), known_loans or set())
    if errors:
        raise PortfolioError(errors)
    return doc


def cross_check(doc: PortfolioDocument, known_borrowers: set[str],
                known_loans: set[str]) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = []

    def dupes(section: str, ids: list[str]) -> set[str]:
        seen: set[str] = set()
        for index, item_id in enumerate(ids):
            if item_id in seen:
                errors.append({"item": f"{section}[{index}] (id={item_id})", "field": "id",
                               "message": f"duplicate id {item_id!r} in this document"})
            seen.add(item_id)
        return seen

    borrower_ids = dupes("borrowers", [b.id for b in doc.borrowers])
    loan_ids = dupes("loans", [loan.id for loan in doc.loans])
    dupes("payments", [p.id for p in doc.payments])
    for index, loan in enumerate(doc.loans):
        item = f"loans[{index}] (id={loan.id})"
        if loan.borrower_id not in borrower_ids and loan.borrower_id not in known_borrowers:
            errors.append({"item": item, "field": "borrower_id",
                           "message": f"unknown borrower {loan.borrower_id!r}"})
        seqs: set[int] = set()
        for j, inst in enumerate(loan.installments):
            if inst.seq in seqs:
                errors.append({"item": item, "field": f"installments[{j}].seq",
                               "message": f"duplicate installment seq {inst.seq}"})
            seqs.add(inst.seq)
            if inst.due_date < loan.disbursed_on:
                errors.append({"item": item, "field": f"installments[{j}].due_date",
                               "message": "due date is before the disbursement date"})
            if not math.isfinite(float(inst.principal + inst.interest + inst.fee)):
                errors.append({"item": item, "field": f"installments[{j}]",
                               "message": "amount is not finite"})
    for index, payment in enumerate(doc.payments):
        if payment.loan_id not in loan_ids and payment.loan_id not in known_loans:
            errors.append({"item": f"payments[{index}] (id={payment.id})", "field": "loan_id",
                           "message": f"unknown loan {payment.loan_id!r}"})
    return errors[:50]
