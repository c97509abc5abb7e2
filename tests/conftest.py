"""Shared fixtures: a fresh database per test (SQLite file, and PostgreSQL where reachable)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from agent.api.app import create_app
from agent.bootstrap import Services, build_services
from agent.config.settings import Settings

CONTRACT_DOC: dict[str, Any] = {
    "borrowers": [{"id": "B001", "name": "张伟", "phone": "13812345678",
                   "timezone": "Asia/Shanghai",
                   "emergency_contacts": [{"name": "李娜", "phone": "13900001111",
                                           "relation": "spouse"}]}],
    "loans": [{"id": "L001", "borrower_id": "B001", "principal": 12000, "annual_rate": 0.18,
               "penalty_rate_daily": 0.0005, "disbursed_on": "2026-05-10",
               "installments": [{"seq": s, "due_date": f"2026-{5 + s:02d}-10", "principal": 1000,
                                 "interest": 180, "fee": 0} for s in range(1, 13 - 5)]}],
    "payments": [{"id": "P001", "loan_id": "L001", "amount": 1180,
                  "paid_at": "2026-06-10T09:30:00+08:00", "channel": "alipay"}],
}


def _postgres_url() -> str | None:
    url = os.environ.get("HUIKUAN_TEST_POSTGRES_URL")
    if url:
        return url
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            pass
    except OSError:
        return None
    return "postgresql+psycopg://postgres@127.0.0.1:5432/test"


POSTGRES_URL = _postgres_url()
DB_BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """SQLite by default; tests parametrised with ``db_backend`` also run on PostgreSQL."""
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    assert POSTGRES_URL
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database_url" in metafunc.fixturenames and "all_databases" in metafunc.fixturenames:
        metafunc.parametrize("database_url", DB_BACKENDS, indirect=True)


@pytest.fixture
def all_databases() -> None:
    """Marker fixture: request it to run the test against every reachable database."""


class FixedClock:
    def __init__(self, when: datetime) -> None:
        self.when = when

    def __call__(self) -> datetime:
        return self.when


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 25, 10, 0, tzinfo=UTC))


@pytest.fixture(scope="session")
def nlu_pipeline() -> Any:
    """The real, trained language-understanding pipeline, loaded once per test run."""
    from nlp.pipeline import NluPipeline

    return NluPipeline.load()


@pytest.fixture
def services(tmp_path: Path, database_url: str, clock: FixedClock,
             request: pytest.FixtureRequest) -> Iterator[Services]:
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url,
                        api_key="test-key")
    overrides: dict[str, Any] = {}
    if "nlu_pipeline" in request.fixturenames or request.node.get_closest_marker("nlu"):
        overrides["nlu"] = request.getfixturevalue("nlu_pipeline")
    built = build_services(settings, clock=clock, **overrides)
    yield built
    built.engine.dispose()


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services)) as test_client:
        test_client.headers["Authorization"] = "Bearer test-key"
        yield test_client


@pytest.fixture
def contract_doc() -> dict[str, Any]:
    import copy

    return copy.deepcopy(CONTRACT_DOC)
