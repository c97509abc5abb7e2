"""The lender's portfolio document: validation with errors that name the item and the field.

Shared by ``POST /api/v1/portfolio`` and ``huikuan import``; a document with any invalid item is
rejected whole, so callers validate everything before writing anything.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, NotRequired
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    with_config,
)
from typing_extensions import TypedDict

from nlp.masking import mask_sensitive

_MONEY = Annotated[Decimal, Field(ge=0, allow_inf_nan=False, max_digits=18, decimal_places=6)]
# Amounts already found valid. Whether an amount passes ``_MONEY`` depends on its numeric value
# alone (finite, >= 0, digits counted on the normalised value), and a portfolio repeats the same
# few amounts a million times, so a value equal to one seen valid skips pydantic's digit
# counting, which dominates validating an installment. Anything else gets the full check.
_VALID_MONEY: set[Decimal | int] = set()


def _cached_money(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    kind = type(value)
    if kind is Decimal or kind is int:
        try:
            if value in _VALID_MONEY:
                return value if kind is Decimal else Decimal(value)
        except TypeError:  # a signalling NaN cannot be hashed; the full check refuses it
            pass
        result = handler(value)
        if len(_VALID_MONEY) < 100_000:
            _VALID_MONEY.add(value)
        return result
    return handler(value)


Money = Annotated[_MONEY, WrapValidator(_cached_money)]
Rate = Annotated[Decimal, Field(ge=0, le=10, allow_inf_nan=False)]
Ident = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]

# Items are TypedDicts, not models: validating into plain dicts is several times faster than
# building a model instance per item, which matters for a million installments. Optional keys
# get their defaults in ``_fill_defaults`` (pydantic never validates defaults either).
_ITEM_CONFIG = ConfigDict(extra="ignore", str_strip_whitespace=True)


_PERSONAL_FIELDS = {"name", "phone", "emergency_contacts"}


def _known_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA timezone {value!r}") from exc
    return value


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("paid_at needs a UTC offset, e.g. 2026-06-10T09:30:00+08:00")
    return value


def _positive(value: Decimal) -> Decimal:
    if value <= 0:
        raise ValueError("payment amount must be greater than 0")
    return value


@with_config(_ITEM_CONFIG)
class EmergencyContactIn(TypedDict):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    phone: Annotated[str, Field(min_length=3, max_length=32)]
    relation: NotRequired[Annotated[str, Field(max_length=32)]]  # default "other"


def _aware_instant(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("needs a UTC offset, e.g. 2026-06-10T09:30:00+08:00")
    return value


@with_config(_ITEM_CONFIG)
class ConsentIn(TypedDict):
    """Prior express consent to a kind of contact on one number (``ai_voice``: FCC 24-17)."""

    kind: Literal["ai_voice"]
    phone: Annotated[str, Field(min_length=3, max_length=32, pattern=r"^\+?[0-9 \-]{3,32}$")]
    given_at: Annotated[datetime, AfterValidator(_aware_instant)]
    revoked_at: NotRequired[Annotated[datetime, AfterValidator(_aware_instant)] | None]
    source: NotRequired[Annotated[str | None, Field(max_length=64)]]


@with_config(_ITEM_CONFIG)
class BorrowerIn(TypedDict):
    id: Ident
    name: Annotated[str, Field(min_length=1, max_length=100)]
    phone: Annotated[str, Field(min_length=3, max_length=32, pattern=r"^\+?[0-9 \-]{3,32}$")]
    timezone: NotRequired[Annotated[str, AfterValidator(_known_timezone)]]  # "Asia/Shanghai"
    emergency_contacts: NotRequired[Annotated[list[EmergencyContactIn], Field(max_length=20)]]
    # Upserted by (kind, phone); consents not sent are left as stored (revoke with revoked_at).
    consents: NotRequired[Annotated[list[ConsentIn], Field(max_length=20)]]


@with_config(_ITEM_CONFIG)
class InstallmentIn(TypedDict):
    seq: Annotated[int, Field(ge=1, le=1000)]
    due_date: date
    principal: Money
    interest: NotRequired[Money]  # default 0
    fee: NotRequired[Money]  # default 0


@with_config(_ITEM_CONFIG)
class LoanIn(TypedDict):
    id: Ident
    borrower_id: Ident
    principal: Money
    annual_rate: NotRequired[Rate]  # default 0
    penalty_rate_daily: NotRequired[Rate]  # default 0
    disbursed_on: date
    installments: Annotated[list[InstallmentIn], Field(min_length=1, max_length=1000)]


@with_config(_ITEM_CONFIG)
class PaymentIn(TypedDict):
    id: Ident
    loan_id: Ident
    amount: Annotated[Money, AfterValidator(_positive)]
    paid_at: Annotated[datetime, AfterValidator(_aware)]
    channel: NotRequired[Annotated[str | None, Field(max_length=32)]]  # default None


@with_config(_ITEM_CONFIG)
class PortfolioDocument(TypedDict):
    """A validated document: every item a plain dict with its defaults filled in."""

    borrowers: NotRequired[list[BorrowerIn]]
    loans: NotRequired[list[LoanIn]]
    payments: NotRequired[list[PaymentIn]]


_DOCUMENT = TypeAdapter(PortfolioDocument)
_ZERO = Decimal(0)


def _fill_defaults(doc: PortfolioDocument) -> PortfolioDocument:
    borrowers = doc.setdefault("borrowers", [])
    loans = doc.setdefault("loans", [])
    payments = doc.setdefault("payments", [])
    for b in borrowers:
        if "timezone" not in b:
            b["timezone"] = "Asia/Shanghai"
        contacts = b.setdefault("emergency_contacts", [])
        for c in contacts:
            c.setdefault("relation", "other")
    for loan in loans:
        if "annual_rate" not in loan:
            loan["annual_rate"] = _ZERO
        if "penalty_rate_daily" not in loan:
            loan["penalty_rate_daily"] = _ZERO
        for i in loan["installments"]:
            if len(i) != 5:
                i.setdefault("interest", _ZERO)
                i.setdefault("fee", _ZERO)
    for p in payments:
        if "channel" not in p:
            p["channel"] = None
    return doc


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
        doc = _DOCUMENT.validate_python(raw)
    except ValidationError as exc:
        errors = []
        for err in exc.errors(include_url=False)[:50]:
            item, field = _describe_location(raw, tuple(err["loc"]))
            value = err.get("input")
            detail = mask_sensitive(err["msg"])
            # Echo the offending value only where it is not personal data (names, phones).
            if (not isinstance(value, dict | list) and value is not None
                    and not any(part in _PERSONAL_FIELDS for part in err["loc"])):
                detail += f" (got {mask_sensitive(repr(value))})"
            errors.append({"item": item, "field": field, "message": detail})
        raise PortfolioError(errors) from None
    _fill_defaults(doc)
    errors = cross_check(doc, known_borrowers or set(), known_loans or set())
    if errors:
        raise PortfolioError(errors)
    return doc


def cross_check(doc: PortfolioDocument, known_borrowers: set[str],
                known_loans: set[str]) -> list[dict[str, str]]:
    """Rules across items. Amounts need no finiteness check: ``Money`` is finite and bounded."""
    errors: list[dict[str, str]] = []

    def dupes(section: str, ids: list[str]) -> set[str]:
        seen = set(ids)
        if len(seen) == len(ids):
            return seen
        seen = set()
        for index, item_id in enumerate(ids):
            if item_id in seen:
                errors.append({"item": f"{section}[{index}] (id={item_id})", "field": "id",
                               "message": f"duplicate id {item_id!r} in this document"})
            seen.add(item_id)
        return seen

    borrower_ids = dupes("borrowers", [b["id"] for b in doc["borrowers"]])
    loan_ids = dupes("loans", [loan["id"] for loan in doc["loans"]])
    dupes("payments", [p["id"] for p in doc["payments"]])
    for index, loan in enumerate(doc["loans"]):
        borrower_id, installments = loan["borrower_id"], loan["installments"]
        if borrower_id not in borrower_ids and borrower_id not in known_borrowers:
            errors.append({"item": f"loans[{index}] (id={loan['id']})", "field": "borrower_id",
                           "message": f"unknown borrower {borrower_id!r}"})
        # Quick whole-loan checks first; the per-installment walk only runs to name the culprit.
        disbursed = loan["disbursed_on"]
        if (len({i["seq"] for i in installments}) == len(installments)
                and min(i["due_date"] for i in installments) >= disbursed):
            continue
        item = f"loans[{index}] (id={loan['id']})"
        seqs: set[int] = set()
        for j, inst in enumerate(installments):
            if inst["seq"] in seqs:
                errors.append({"item": item, "field": f"installments[{j}].seq",
                               "message": f"duplicate installment seq {inst['seq']}"})
            seqs.add(inst["seq"])
            if inst["due_date"] < disbursed:
                errors.append({"item": item, "field": f"installments[{j}].due_date",
                               "message": "due date is before the disbursement date"})
    for index, payment in enumerate(doc["payments"]):
        if payment["loan_id"] not in loan_ids and payment["loan_id"] not in known_loans:
            errors.append({"item": f"payments[{index}] (id={payment['id']})", "field": "loan_id",
                           "message": f"unknown loan {payment['loan_id']!r}"})
    return errors[:50]
