"""Contact caps hold when several workers dial the same borrower at once.

Caps are counted in the database, so what matters is that two gates for one borrower cannot
both read "5 attempts so far" and both dial: the second must wait for the first to commit.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agent.bootstrap import Services
from agent.contacts import reserve_contact
from agent.importer import import_document
from agent.store.db import session_scope
from agent.store.tables import ContactAttempt

pytestmark = pytest.mark.db
NOON_SHANGHAI = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)


def test_second_gate_waits_for_the_first_and_sees_its_attempt(
        services: Services, contract_doc: dict[str, Any], all_databases: None) -> None:
    import_document(services.engine, contract_doc)
    with session_scope(services.engine) as session:
        for minute in range(5):
            session.add(ContactAttempt(borrower_id="B001", loan_id="L001", channel="voice",
                                       at=NOON_SHANGHAI - timedelta(minutes=minute + 1),
                                       outcome="no_answer"))
    second: dict[str, str] = {}

    def other_worker() -> None:
        with session_scope(services.engine) as session:
            second["outcome"] = reserve_contact(session, services.policy, "L001", "voice",
                                                NOON_SHANGHAI).outcome

    with session_scope(services.engine) as session:
        first = reserve_contact(session, services.policy, "L001", "voice", NOON_SHANGHAI)
        assert first.outcome == "dialing"  # the 6th attempt, not yet committed
        worker = threading.Thread(target=other_worker)
        worker.start()
        time.sleep(0.5)
        assert worker.is_alive(), "the second gate did not wait for the first"
    worker.join(timeout=30)
    assert second == {"outcome": "blocked"}
