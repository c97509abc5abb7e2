"""Engine, sessions and schema migrations (Alembic, never ``create_all`` on a real database)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, create_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
T = TypeVar("T")
# PostgreSQL: deadlock_detected, serialization_failure. Both roll back the whole transaction,
# so running it again from the start is safe.
RETRYABLE_SQLSTATES = {"40P01", "40001"}


def make_engine(url: str) -> Engine:
    """SQLite gets WAL and a busy timeout so several workers can share the file."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # A long busy timeout: a turn waits for a bulk import's lock rather than fail (a
        # borrower's message is never lost to "database is locked").
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 300}, pool_size=20,
            max_overflow=40, hide_parameters=True,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    # hide_parameters: statement parameters (a borrower's words) never reach logs or errors.
    return create_engine(url, pool_size=20, max_overflow=40, pool_pre_ping=True,
                         hide_parameters=True)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent)."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error so nothing half-written stays."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def bulk_write_scope(engine: Engine) -> Iterator[tuple[Session, bool]]:
    """``session_scope`` for bulk imports; also says whether the database enforces foreign keys.

    On SQLite the transaction's connection runs with ``foreign_keys=OFF``: per-row enforcement
    costs more than the inserts themselves, and the importer validates every reference before
    writing and checks them once more, in one query per table, before committing. The pragma
    only takes effect outside a transaction, so it is set before the first statement and put
    back after the commit or rollback; a connection that cannot be put back is discarded,
    never returned to the pool without enforcement. Other databases keep their constraints.
    """
    if engine.dialect.name != "sqlite":
        with session_scope(engine) as session:
            yield session, True
        return
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
        enforced = bool(connection.exec_driver_sql("PRAGMA foreign_keys").scalar())
        connection.commit()
        try:
            with Session(bind=connection, expire_on_commit=False) as session:
                try:
                    yield session, enforced
                    session.commit()
                except BaseException:
                    session.rollback()
                    raise
        finally:
            try:
                connection.rollback()
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                restored = connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
                connection.commit()
            except Exception:  # noqa: BLE001 - any failure: the connection must not be reused
                restored = False
            if not restored:
                connection.invalidate()


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in RETRYABLE_SQLSTATES


def run_with_retry(transaction: Callable[[], T], attempts: int = 5) -> T:
    """Run a whole transaction, again after a deadlock or serialization failure (with jitter)."""
    for attempt in range(1, attempts + 1):
        try:
            return transaction()
        except DBAPIError as exc:
            if attempt == attempts or not is_retryable(exc):
                raise
            time.sleep(random.uniform(0.01, 0.05) * attempt)
    raise AssertionError("unreachable")
