"""Bulk import of portfolio files (JSON document or a CSV set), all-or-nothing, in batches."""

from __future__ import annotations

import csv
import gc
import json
import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from agent.portfolio import PortfolioError, parse_json, validate_document
from agent.store.db import bulk_write_scope
from agent.store.loans import (
    UpsertCounts,
    dangling_references,
    referenced_unknowns,
    upsert_document,
)

CSV_FILES = ("borrowers.csv", "loans.csv", "installments.csv", "payments.csv")
ProgressFn = Callable[[int, int], None]


class ImportFailed(ValueError):
    """Import failed; nothing was written. The message names file, line and field."""


def load_csv_set(directory: Path) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Build a portfolio document from CSV files; also return where each item came from."""
    doc: dict[str, Any] = {"borrowers": [], "loans": [], "payments": []}
    origin: dict[str, list[str]] = {"borrowers": [], "loans": [], "payments": []}
    missing = [name for name in ("borrowers.csv", "loans.csv") if not (directory / name).exists()]
    if missing:
        raise ImportFailed(f"{directory}: missing {', '.join(missing)}")

    def rows(name: str) -> list[tuple[int, dict[str, str]]]:
        path = directory / name
        if not path.exists():
            return []
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return [(index + 2, row) for index, row in enumerate(csv.DictReader(handle))]

    for line, row in rows("borrowers.csv"):
        contacts = []
        if row.get("emergency_contacts"):
            try:
                contacts = json.loads(row["emergency_contacts"])
            except ValueError as exc:
                raise ImportFailed(f"borrowers.csv line {line}: emergency_contacts is not JSON") from exc
        elif row.get("contact_phone"):
            contacts = [{"name": row.get("contact_name") or "-", "phone": row["contact_phone"],
                         "relation": row.get("contact_relation") or "other"}]
        doc["borrowers"].append({"id": row.get("id"), "name": row.get("name"),
                                 "phone": row.get("phone"),
                                 "timezone": row.get("timezone") or "Asia/Shanghai",
                                 "emergency_contacts": contacts})
        origin["borrowers"].append(f"borrowers.csv line {line}")
    loans_by_id: dict[str, dict[str, Any]] = {}
    for line, row in rows("loans.csv"):
        loan = {**row, "installments": []}
        doc["loans"].append(loan)
        origin["loans"].append(f"loans.csv line {line}")
        loans_by_id.setdefault(row.get("id") or "", loan)
    installment_lines: dict[str, list[int]] = defaultdict(list)
    for line, row in rows("installments.csv"):
        loan = loans_by_id.get(row.get("loan_id") or "")
        if loan is None:
            raise ImportFailed(f"installments.csv line {line}: loan_id: unknown loan {row.get('loan_id')!r}")
        loan["installments"].append({k: v for k, v in row.items() if k != "loan_id"})
        installment_lines[loan["id"]].append(line)
    for line, row in rows("payments.csv"):
        doc["payments"].append(row)
        origin["payments"].append(f"payments.csv line {line}")
    # Nested installment errors point at the installments.csv line, not the loan's.
    origin["_installments"] = [json.dumps(installment_lines)]
    return doc, origin


_ITEM = re.compile(r"^(borrowers|loans|payments)\[(\d+)\]")
_INST = re.compile(r"^installments\[(\d+)\]")


def _locate(error: dict[str, str], origin: dict[str, list[str]] | None, doc: dict[str, Any]) -> str:
    item, field = error.get("item", ""), error.get("field", "")
    where = " ".join(p for p in (item, field) if p)
    match = _ITEM.match(item)
    if origin and match:
        section, index = match.group(1), int(match.group(2))
        where = origin[section][index] + (f" ({field})" if field else "")
        inst = _INST.match(field)
        if section == "loans" and inst:
            lines = json.loads(origin["_installments"][0]).get(doc["loans"][index].get("id"), [])
            position = int(inst.group(1))
            if position < len(lines):
                where = f"installments.csv line {lines[position]} ({field})"
    return f"{where}: {error['message']}"


def import_document(engine: Engine, raw: dict[str, Any], origin: dict[str, list[str]] | None = None,
                    batch_loans: int = 5000, progress: ProgressFn | None = None) -> UpsertCounts:
    """Validate and write in batches inside ONE transaction: any bad item rolls everything back."""
    if not isinstance(raw, dict):
        raise ImportFailed("document must be a JSON object")
    loans = raw.get("loans") or []
    payments = raw.get("payments") or []
    borrowers = raw.get("borrowers") or []
    total = len(borrowers) + len(loans) + len(payments)
    counts = UpsertCounts()
    done = 0
    # Millions of short-lived, acyclic objects: cyclic GC passes over them would only cost time.
    collecting = gc.isenabled()
    gc.disable()
    try:
        with bulk_write_scope(engine) as (session, enforced):
            parts = [{"borrowers": borrowers[i:i + batch_loans]}
                     for i in range(0, len(borrowers), batch_loans)]
            parts += [{"loans": loans[i:i + batch_loans]} for i in range(0, len(loans), batch_loans)]
            parts += [{"payments": payments[i:i + batch_loans]}
                      for i in range(0, len(payments), batch_loans)]
            offsets = {"borrowers": 0, "loans": 0, "payments": 0}
            written: tuple[set[str], set[str]] = (set(), set())
            written_payments: list[str] = []
            for part in parts:
                section = next(iter(part))
                try:
                    # Earlier batches are written, so later ones see their ids as known.
                    known_b, known_l = referenced_unknowns(session, part, written)
                    doc = validate_document(part, known_b, known_l)
                except PortfolioError as exc:
                    raise _shift(exc, section, offsets[section]) from None
                counts.add(upsert_document(session, doc))
                written[0].update(b["id"] for b in doc["borrowers"])
                written[1].update(loan["id"] for loan in doc["loans"])
                written_payments.extend(p["id"] for p in doc["payments"])
                session.flush()
                offsets[section] += len(part[section])
                done += len(part[section])
                if progress:
                    progress(done, total)
            _check_duplicates_across_batches(raw)
            if not enforced:
                # The database skipped its per-row checks: every reference this import wrote
                # is checked once more here, and any dangling one rolls the whole import back.
                _check_references(session, raw, written[1], written_payments)
    except PortfolioError as exc:
        raise ImportFailed("; ".join(_locate(e, origin, raw) for e in exc.errors[:10])) from None
    finally:
        if collecting:
            gc.enable()
    return counts


def _check_references(session: Any, raw: dict[str, Any], loan_ids: set[str],
                      payment_ids: list[str]) -> None:
    dangling = dangling_references(session, loan_ids, payment_ids)
    if not dangling:
        return
    index = {(section, str(item.get("id")).strip()): i for section in ("loans", "payments")
             for i, item in enumerate(raw.get(section) or []) if isinstance(item, dict)}
    errors = []
    for section, item_id, field, target in dangling:
        what = "borrower" if field == "borrower_id" else "loan"
        errors.append({"item": f"{section}[{index.get((section, item_id), '?')}] (id={item_id})",
                       "field": field, "message": f"unknown {what} {target!r}"})
    raise PortfolioError(errors)


def _shift(exc: PortfolioError, section: str, offset: int) -> PortfolioError:
    def fix(item: str) -> str:
        match = _ITEM.match(item)
        if not match or offset == 0:
            return item
        return f"{section}[{int(match.group(2)) + offset}]" + item[match.end():]

    return PortfolioError([{**e, "item": fix(e.get("item", ""))} for e in exc.errors])


def _check_duplicates_across_batches(raw: dict[str, Any]) -> None:
    errors = []
    for section in ("borrowers", "loans", "payments"):
        seen: set[Any] = set()
        for index, item in enumerate(raw.get(section) or []):
            item_id = item.get("id") if isinstance(item, dict) else None
            if item_id in seen:
                errors.append({"item": f"{section}[{index}] (id={item_id})", "field": "id",
                               "message": f"duplicate id {item_id!r} in this document"})
            seen.add(item_id)
    if errors:
        raise PortfolioError(errors)


def import_path(engine: Engine, path: Path, progress: ProgressFn | None = None) -> UpsertCounts:
    """A ``.json`` portfolio document, or a directory holding the CSV set."""
    if path.is_dir():
        raw, origin = load_csv_set(path)
        return import_document(engine, raw, origin, progress=progress)
    if not path.exists():
        raise ImportFailed(f"{path}: no such file or directory")
    try:
        raw = parse_json(path.read_bytes())
    except PortfolioError as exc:
        raise ImportFailed(f"{path}: {exc}") from None
    return import_document(engine, raw, progress=progress)
