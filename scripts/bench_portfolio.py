"""Benchmark a whole-portfolio import and position run on SQLite and PostgreSQL.

Imports a synthetic portfolio (100,000 loans, about 1M installments by default) with
``import_document`` into a fresh SQLite file and a fresh PostgreSQL schema, then computes
every loan's position from the database (``iter_loans`` + ``compute_position``), and runs
the naive day-by-day reference (``scripts/bench_positions.reference_position``) on a sample
in the same run so the engine's rate can be read as a ratio.

Targets on the 2-core reference machine: import >= 5,000 loans/s on SQLite, positions
>= 20,000 loans/s on one core.

    python scripts/bench_portfolio.py [--loans 100000] [--installments 10] [--skip-postgres]
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_positions import reference_position  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlmodel import Session  # noqa: E402

from agent.core.positions import compute_position  # noqa: E402
from agent.importer import import_document  # noqa: E402
from agent.store.db import make_engine, migrate  # noqa: E402
from agent.store.loans import iter_loans  # noqa: E402

POSTGRES_URL = os.environ.get(
    "HUIKUAN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
TODAY = date(2026, 11, 25)
AS_OF = datetime(2026, 11, 25, 4, tzinfo=UTC)  # noon in Shanghai
TIMEZONES = ["Asia/Shanghai"] * 18 + ["Asia/Urumqi", "Asia/Hong_Kong"]
CHANNELS = ["alipay", "wechat", "bank_card", "app"]
IMPORT_TARGET = 5_000
POSITIONS_TARGET = 20_000


def _add_months(day: date, months: int) -> date:
    y, m = divmod(day.month - 1 + months, 12)
    return date(day.year + y, m + 1, min(day.day, 28))


def generate(loans: int, installments: int = 10, seed: int = 7) -> dict[str, Any]:
    """A portfolio document shaped like ``parse_json``'s output (numbers with a point are Decimal).

    1-2 loans per borrower, ``installments`` +/- 4 monthly installments per loan, punctual,
    late and stopped payers, so positions span current ... M6+.
    """
    rng = random.Random(seed)
    lo, hi = max(1, installments - 4), installments + 4
    doc: dict[str, Any] = {"borrowers": [], "loans": [], "payments": []}
    borrowers, loan_list, payments = doc["borrowers"], doc["loans"], doc["payments"]
    b = p = 0
    cent = Decimal("0.01")
    while len(loan_list) < loans:
        b += 1
        borrower_id = f"B{b:07d}"
        borrowers.append({
            "id": borrower_id, "name": f"借款人{b}", "phone": f"138{b:08d}",
            "timezone": rng.choice(TIMEZONES),
            "emergency_contacts": [{"name": f"联系人{b}", "phone": f"139{b:08d}",
                                    "relation": "spouse"}],
        })
        for n in range(1 if rng.random() < 0.85 else 2):
            if len(loan_list) >= loans:
                break
            loan_id = f"L{b:07d}{n}"
            terms = rng.randint(lo, hi)
            principal = Decimal(rng.randrange(30, 500) * 100)
            rate = Decimal(rng.choice(("0.18", "0.2", "0.24", "0.12")))
            disbursed = TODAY - timedelta(days=rng.randrange(30, 30 * (terms + 6)))
            per = (principal / terms).quantize(cent)
            interest = (principal * rate / 12).quantize(cent)
            insts = []
            for seq in range(1, terms + 1):
                insts.append({
                    "seq": seq, "due_date": _add_months(disbursed, seq).isoformat(),
                    "principal": per if seq < terms else principal - per * (terms - 1),
                    "interest": interest, "fee": 0,
                })
            loan_list.append({
                "id": loan_id, "borrower_id": borrower_id, "principal": principal,
                "annual_rate": rate, "penalty_rate_daily": Decimal("0.0005"),
                "disbursed_on": disbursed.isoformat(), "installments": insts,
            })
            behaviour = rng.choices(("good", "late", "stopped"), weights=(70, 18, 12))[0]
            stop = rng.randrange(0, 4) if behaviour == "stopped" else terms
            for inst in insts[:stop]:
                due = date.fromisoformat(inst["due_date"])
                late = rng.randrange(-5, 2) if behaviour == "good" else rng.choice((0, 3, 12, 25))
                day = due + timedelta(days=late)
                if day >= TODAY:
                    break
                amount = inst["principal"] + inst["interest"]
                if behaviour != "good" and rng.random() < 0.4:
                    amount = (amount * rng.randrange(30, 130) / 100).quantize(cent)
                p += 1
                payments.append({
                    "id": f"P{p:09d}", "loan_id": loan_id, "amount": amount,
                    "paid_at": f"{day.isoformat()}T{rng.randrange(8, 22):02d}:30:00+08:00",
                    "channel": rng.choice(CHANNELS),
                })
    return doc


def _sizes(doc: dict[str, Any]) -> tuple[int, int, int, int]:
    return (len(doc["borrowers"]), len(doc["loans"]),
            sum(len(loan["installments"]) for loan in doc["loans"]), len(doc["payments"]))


def bench_database(name: str, url: str, doc: dict[str, Any]) -> dict[str, Any]:
    engine = make_engine(url)
    migrate(engine)
    _, n_loans, n_inst, _ = _sizes(doc)
    gc.collect()
    start, cpu = time.perf_counter(), time.process_time()
    counts = import_document(engine, doc)
    import_s, import_cpu = time.perf_counter() - start, time.process_time() - cpu
    assert counts.loans == n_loans and counts.installments == n_inst, counts

    # Read + compute, streaming: the way portfolio-wide contact planning walks the book.
    gc.collect()
    overdue = 0
    start, cpu = time.perf_counter(), time.process_time()
    with Session(engine) as session:
        for _, _, terms, pays in iter_loans(session):
            overdue += compute_position(terms, pays, AS_OF).dpd > 0
    read_s, read_cpu = time.perf_counter() - start, time.process_time() - cpu

    # Compute only: everything read first, then the engine timed alone (CPU, one core).
    with Session(engine) as session:
        cases = [(terms, pays) for _, _, terms, pays in iter_loans(session)]
    gc.collect()
    start = time.process_time()
    for terms, pays in cases:
        compute_position(terms, pays, AS_OF)
    compute_s = time.process_time() - start
    engine.dispose()
    return {"name": name, "import_s": import_s, "import_cpu": import_cpu, "loans": n_loans, "installments": n_inst,
            "read_s": read_s, "read_cpu": read_cpu, "compute_s": compute_s, "cases": cases,
            "overdue": overdue}


def _postgres_schema() -> tuple[str, Any, str] | None:
    try:
        admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # noqa: BLE001 - report and go on with SQLite only
        print(f"PostgreSQL unavailable ({type(exc).__name__}: {exc}); skipped", file=sys.stderr)
        return None
    sep = "&" if "?" in POSTGRES_URL else "?"
    return schema, admin, f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loans", type=int, default=100_000)
    ap.add_argument("--installments", type=int, default=10, help="average per loan")
    ap.add_argument("--ref-loans", type=int, default=300, help="sample for the naive loop")
    ap.add_argument("--skip-postgres", action="store_true")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)

    start = time.perf_counter()
    doc = generate(args.loans, args.installments, args.seed)
    n_b, n_l, n_i, n_p = _sizes(doc)
    print(f"document: {n_b:,} borrowers, {n_l:,} loans, {n_i:,} installments "
          f"({n_i / n_l:.1f}/loan), {n_p:,} payments; generated in "
          f"{time.perf_counter() - start:.1f}s (not timed)")

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results.append(bench_database("SQLite", f"sqlite:///{Path(tmp) / 'bench.db'}", doc))
    if not args.skip_postgres:
        pg = _postgres_schema()
        if pg:
            schema, admin, url = pg
            try:
                results.append(bench_database("PostgreSQL", url, doc))
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()

    # The naive day-by-day loop on a sample of the same loans, same as-of.
    cases = results[0]["cases"]
    step = max(1, len(cases) // max(1, args.ref_loans))
    sample = cases[::step][: args.ref_loans]
    start = time.process_time()
    for terms, pays in sample:
        reference_position(terms, pays, AS_OF)
    naive_rate = len(sample) / (time.process_time() - start)
    mismatches = sum(compute_position(t, p, AS_OF) != reference_position(t, p, AS_OF)
                     for t, p in sample[:100])

    print()
    print(f"{'':29}" + "".join(f"{r['name']:>16}" for r in results))
    rows = [
        ("import, seconds wall", lambda r: f"{r['import_s']:.1f}"),
        ("import, seconds CPU (ours)", lambda r: f"{r['import_cpu']:.1f}"),
        ("import, loans/s wall", lambda r: f"{r['loans'] / r['import_s']:,.0f}"),
        ("import, installments/s wall", lambda r: f"{r['installments'] / r['import_s']:,.0f}"),
        ("import, loans/s CPU", lambda r: f"{r['loans'] / r['import_cpu']:,.0f}"),
        ("read+compute, loans/s wall", lambda r: f"{r['loans'] / r['read_s']:,.0f}"),
        ("read+compute, loans/s CPU", lambda r: f"{r['loans'] / r['read_cpu']:,.0f}"),
        ("compute only, loans/s CPU", lambda r: f"{r['loans'] / r['compute_s']:,.0f}"),
        ("engine / naive (compute)", lambda r: f"{r['loans'] / r['compute_s'] / naive_rate:,.0f}x"),
        ("engine / naive (read+comp)", lambda r: f"{r['loans'] / r['read_s'] / naive_rate:,.0f}x"),
        ("overdue loans", lambda r: f"{r['overdue']:,}"),
    ]
    for label, cell in rows:
        print(f"{label:29}" + "".join(f"{cell(r):>16}" for r in results))
    print("CPU is this process's time (SQLite runs in it; the PostgreSQL server's is not "
          "counted); wall time counts whatever else shares the machine.")
    print(f"naive day-by-day loop: {naive_rate:,.0f} loans/s (CPU, {len(sample)} loans sampled); "
          f"engine vs naive mismatches on {min(100, len(sample))}: {mismatches}")

    sqlite = results[0]
    import_rate = sqlite["loans"] / sqlite["import_s"]  # wall: the figure a user waits for
    compute_rate = sqlite["loans"] / sqlite["compute_s"]
    print(f"target import >= {IMPORT_TARGET:,} loans/s on SQLite: "
          f"{'met' if import_rate >= IMPORT_TARGET else 'NOT met'} ({import_rate:,.0f})")
    print(f"target positions >= {POSITIONS_TARGET:,} loans/s on one core: "
          f"{'met' if compute_rate >= POSITIONS_TARGET else 'NOT met'} ({compute_rate:,.0f})")
    return 1 if mismatches else 0


if __name__ == "__main__":
    raise SystemExit(main())
