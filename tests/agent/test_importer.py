"""Bulk import (JSON document and CSV set) and demo data, through the real CLI and database."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from agent.bootstrap import Services
from agent.core.positions import compute_position
from agent.demo import generate
from agent.importer import ImportFailed, import_document, import_path
from agent.store.loans import iter_loans
from agent.store.tables import Installment, Loan

pytestmark = pytest.mark.db


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _csv_set(directory: Path) -> Path:
    directory.mkdir()
    _write_csv(directory / "borrowers.csv", [
        {"id": "B1", "name": "张伟", "phone": "13812345678", "timezone": "Asia/Shanghai",
         "contact_name": "李娜", "contact_phone": "13900001111", "contact_relation": "spouse"},
        {"id": "B2", "name": "王芳", "phone": "13712345678", "timezone": "",
         "contact_name": "", "contact_phone": "", "contact_relation": ""}])
    _write_csv(directory / "loans.csv", [
        {"id": "L1", "borrower_id": "B1", "principal": "3000", "annual_rate": "0.18",
         "penalty_rate_daily": "0.0005", "disbursed_on": "2026-08-01"},
        {"id": "L2", "borrower_id": "B2", "principal": "2000", "annual_rate": "0.18",
         "penalty_rate_daily": "0.0005", "disbursed_on": "2026-08-01"}])
    _write_csv(directory / "installments.csv", [
        {"loan_id": loan, "seq": str(seq), "due_date": f"2026-{8 + seq:02d}-01",
         "principal": "1000", "interest": "45", "fee": "0"}
        for loan in ("L1", "L2") for seq in (1, 2)])
    _write_csv(directory / "payments.csv", [
        {"id": "P1", "loan_id": "L1", "amount": "1045", "paid_at": "2026-09-01T10:00:00+08:00",
         "channel": "alipay"}])
    return directory


def test_csv_set_imports_all_files(services: Services, tmp_path: Path, all_databases: None) -> None:
    counts = import_path(services.engine, _csv_set(tmp_path / "set"))
    assert counts.as_dict() == {"borrowers": 2, "loans": 2, "installments": 4, "payments": 1}
    with Session(services.engine) as session:
        positions = {terms.loan_id: compute_position(terms, pays, datetime(2026, 10, 11, tzinfo=UTC))
                     for _, _, terms, pays in iter_loans(session)}
    assert positions["L1"].dpd == 10 and positions["L2"].dpd == 40


def test_bad_line_names_file_and_line_and_writes_nothing(services: Services, tmp_path: Path) -> None:
    directory = _csv_set(tmp_path / "set")
    rows = list(csv.DictReader((directory / "installments.csv").open(encoding="utf-8")))
    rows[2]["due_date"] = "2026-13-45"
    _write_csv(directory / "installments.csv", rows)
    with pytest.raises(ImportFailed, match=r"installments.csv line 4 .*due_date"):
        import_path(services.engine, directory)
    with Session(services.engine) as session:
        assert session.execute(select(func.count()).select_from(Loan)).scalar_one() == 0


def test_unknown_borrower_in_csv_points_at_loans_line(services: Services, tmp_path: Path) -> None:
    directory = _csv_set(tmp_path / "set")
    rows = list(csv.DictReader((directory / "loans.csv").open(encoding="utf-8")))
    rows[1]["borrower_id"] = "B404"
    _write_csv(directory / "loans.csv", rows)
    with pytest.raises(ImportFailed, match=r"loans.csv line 3 \(borrower_id\): unknown borrower"):
        import_path(services.engine, directory)


def test_batches_are_one_transaction(services: Services) -> None:
    doc = generate(borrowers=40, today=date(2026, 11, 25))
    doc["payments"][-1]["amount"] = -1  # the last batch is bad: earlier batches roll back too
    with pytest.raises(ImportFailed, match="payments"):
        import_document(services.engine, doc, batch_loans=10)
    with Session(services.engine) as session:
        assert session.execute(select(func.count()).select_from(Installment)).scalar_one() == 0


def test_demo_portfolio_spans_buckets(services: Services) -> None:
    progress: list[tuple[int, int]] = []
    import_document(services.engine, generate(borrowers=400, today=date(2026, 11, 25)),
                    progress=lambda done, total: progress.append((done, total)))
    assert progress[-1][0] == progress[-1][1]
    with Session(services.engine) as session:
        buckets = Counter(compute_position(terms, pays, datetime(2026, 11, 25, 4, tzinfo=UTC)).bucket
                          for _, _, terms, pays in iter_loans(session))
    assert {"current", "M1", "M2", "M3", "M6+"} <= set(buckets)
    assert buckets["current"] < sum(buckets.values()) * 0.7


def test_cli_import_reports_and_exits_nonzero_on_bad_file(tmp_path: Path) -> None:
    from conftest import CONTRACT_DOC

    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(CONTRACT_DOC, ensure_ascii=False), "utf-8")
    bad.write_text('{"loans": [{"id": "X"}]}', "utf-8")
    env = {**os.environ, "HUIKUAN_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "300"}
    env.pop("HUIKUAN_DATABASE_URL", None)
    cli = [sys.executable, "-m", "agent.cli", "import"]
    ok = subprocess.run([*cli, str(good)], env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "'loans': 1" in ok.stderr
    failed = subprocess.run([*cli, str(bad)], env=env, capture_output=True, text=True, timeout=120)
    assert failed.returncode == 1 and "nothing imported" in failed.stderr
    assert "loans[0] (id=X)" in failed.stderr
