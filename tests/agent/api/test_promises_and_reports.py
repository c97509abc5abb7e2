"""Promise lifecycle through the public API, and the per-strategy report ops read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agent.bootstrap import Services
from tests.agent.api.test_chat_ws import chat, token, transcript

pytestmark = [pytest.mark.db, pytest.mark.nlu]


def pay(client: TestClient, payment_id: str, amount: float, paid_at: str) -> None:
    response = client.post("/api/v1/portfolio", json={"payments": [
        {"id": payment_id, "loan_id": "L001", "amount": amount, "paid_at": paid_at}]})
    assert response.status_code == 200, response.text


def promise(client: TestClient, says: str = "我后天先还三千块") -> str:
    with chat(client, token(client)) as c:
        c.say(says)
        c.say("对的没问题")
    return c.conversation_id


@pytest.fixture
def loaded(client: TestClient, contract_doc: dict[str, Any]) -> TestClient:
    assert client.post("/api/v1/portfolio", json=contract_doc).status_code == 200
    return client


def test_a_payment_posted_keeps_the_promise_and_ends_the_hold(loaded: TestClient) -> None:
    conversation = promise(loaded)
    pay(loaded, "PK1", 1000, "2026-11-25T19:00:00+08:00")
    stored = transcript(loaded, conversation)["promises"][0]
    assert (stored["status"], stored["paid_amount"]) == ("pending", 1000.0)
    pay(loaded, "PK2", 2000, "2026-11-25T19:30:00+08:00")
    stored = transcript(loaded, conversation)["promises"][0]
    assert (stored["status"], stored["paid_amount"]) == ("kept", 3000.0)
    rows = loaded.get("/api/v1/contact-plan",
                      params={"channel": "voice", "at": "2026-11-25T20:00:00+08:00"}).json()
    assert next(r for r in rows if r["loan_id"] == "L001")["reason"] != "promise_pending"


def test_the_sweep_breaks_an_unpaid_promise_after_the_grace_once(
        loaded: TestClient, services: Services) -> None:
    from sqlmodel import Session

    from agent.store.promises import resolve_promises

    conversation = promise(loaded)  # due 2026-11-27, grace 1 day: judged from 11-29 00:00
    pay(loaded, "PB1", 500, "2026-11-28T20:00:00+08:00")
    with Session(services.engine) as db:
        assert resolve_promises(db, datetime(2026, 11, 28, 15, 59, tzinfo=UTC), 1) == {}
        assert resolve_promises(db, datetime(2026, 11, 28, 16, 0, tzinfo=UTC), 1) == {
            "partially_kept": 1}
        assert resolve_promises(db, datetime(2026, 12, 5, tzinfo=UTC), 1) == {}  # idempotent
        db.commit()
    stored = transcript(loaded, conversation)["promises"][0]
    assert (stored["status"], stored["paid_amount"]) == ("partially_kept", 500.0)


def test_a_later_promise_cancels_the_earlier_and_only_the_live_one_is_judged(
        loaded: TestClient) -> None:
    with chat(loaded, token(loaded)) as c:
        c.say("我后天先还三千块")
        c.say("对的没问题")
        c.say("算了 改成下周一还两千")
        c.say("对")
    pay(loaded, "PC1", 2000, "2026-11-25T20:00:00+08:00")
    promises = transcript(loaded, c.conversation_id)["promises"]
    assert sorted(p["status"] for p in promises) == ["cancelled", "kept"]


def test_strategy_report_counts_each_arm(loaded: TestClient, services: Services) -> None:
    kept = promise(loaded)
    with chat(loaded, token(loaded)) as c:
        c.say("我现在一共欠你们多少钱")
    pay(loaded, "PR1", 3000, "2026-11-25T19:00:00+08:00")
    response = loaded.get("/api/v1/reports/strategies",
                          params={"from": "2026-11-25", "to": "2026-11-25"})
    assert response.status_code == 200, response.text
    rows = response.json()
    assert len(rows) == 1
    row = rows[0]
    assert row["strategy"] == transcript(loaded, kept)["strategy"]
    assert row["arm"] in ("champion", "challenger")
    assert (row["conversations"], row["right_party_contacts"], row["promises"],
            row["promises_kept"], row["promises_broken"]) == (2, 2, 1, 1, 0)
    assert (row["amount_promised"], row["amount_collected"]) == (3000.0, 3000.0)
    empty = loaded.get("/api/v1/reports/strategies",
                       params={"from": "2026-11-26", "to": "2026-11-30"}).json()
    assert empty == []
    bad = loaded.get("/api/v1/reports/strategies", params={"from": "2026-12-01",
                                                           "to": "2026-11-01"})
    assert bad.status_code == 422 and "after" in bad.json()["detail"]
    assert loaded.get("/api/v1/reports/strategies",
                      headers={"Authorization": "Bearer nope"}).status_code == 401
