"""The service under a careless integrator or an attacker: limits before parsing, clear errors,
no personal data in stored notes, error bodies or logs, owner-only files."""

from __future__ import annotations

import asyncio
import logging
import stat
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.websockets import WebSocketDisconnect

from agent.bootstrap import Services
from agent.logs import MaskingFilter
from agent.session import ConversationSession
from agent.store.db import session_scope
from agent.store.reviews import Review

pytestmark = [pytest.mark.db]

ID_NUMBER = "110101199003071234"
PHONE = "13912345678"


def test_requests_without_the_key_are_refused_before_their_body_is_read(
        client: TestClient) -> None:
    client.headers.pop("Authorization")
    huge = b"x" * (8 * 1024 * 1024)
    response = client.post("/api/v1/nlu/parse", content=huge,
                           headers={"content-type": "application/json"})
    assert response.status_code == 401 and "API key" in response.json()["detail"]
    wrong = client.post("/api/v1/nlu/parse", json={"text": "hi"},
                        headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401


def test_oversized_bodies_get_413_naming_the_limit(client: TestClient,
                                                   services: Services) -> None:
    limit = services.settings.max_small_body_bytes
    response = client.post("/api/v1/nlu/parse", json={"text": "我" * limit})
    assert response.status_code == 413 and str(limit) in response.json()["detail"]
    # Portfolio uploads have their own, larger cap: a mid-sized document is not refused for size.
    ok = client.post("/api/v1/portfolio", json={"borrowers": [], "loans": [], "payments": [],
                                                "pad": "x" * (limit * 2)})
    assert ok.status_code != 413


def test_control_characters_in_ids_are_a_clear_400(client: TestClient) -> None:
    response = client.get("/api/v1/loans/L00%001")
    assert response.status_code == 400 and "control" in response.json()["detail"]


def test_security_headers_on_api_and_console(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.headers.get("x-content-type-options") == "nosniff"
    console = client.get("/console/")
    if console.status_code == 200:
        assert "frame-ancestors 'none'" in console.headers.get("content-security-policy", "")


def test_benchmark_echo_socket_is_closed_unless_enabled(client: TestClient) -> None:
    with pytest.raises(WebSocketDisconnect), client.websocket_connect("/ws/echo") as ws:
        ws.send_text("x")
        ws.receive_text()


def test_media_tokens_need_the_key_and_a_known_loan(client: TestClient,
                                                    contract_doc: dict[str, Any]) -> None:
    assert client.post("/api/v1/portfolio", json=contract_doc).status_code == 200
    issued = client.post("/api/v1/media-tokens", json={"loan_id": "L001", "direction": "outbound"})
    assert issued.status_code == 200 and len(issued.json()["token"]) >= 32
    assert client.post("/api/v1/media-tokens",
                       json={"loan_id": "NOPE", "direction": "outbound"}).status_code == 404
    assert client.post("/api/v1/media-tokens",
                       json={"loan_id": "L001", "direction": "sideways"}).status_code == 422
    client.headers.pop("Authorization")
    assert client.post("/api/v1/media-tokens",
                       json={"loan_id": "L001", "direction": "outbound"}).status_code == 401


def test_portfolio_errors_do_not_echo_personal_data(client: TestClient,
                                                    contract_doc: dict[str, Any]) -> None:
    contract_doc["borrowers"][0]["phone"] = {"oops": PHONE}
    contract_doc["borrowers"][0]["timezone"] = f"Asia/{ID_NUMBER}"
    response = client.post("/api/v1/portfolio", json=contract_doc)
    assert response.status_code == 422
    assert PHONE not in response.text and ID_NUMBER not in response.text
    assert {e["field"] for e in response.json()["errors"]} >= {"phone", "timezone"}


def test_review_notes_are_stored_masked(client: TestClient, services: Services,
                                        contract_doc: dict[str, Any]) -> None:
    assert client.post("/api/v1/portfolio", json=contract_doc).status_code == 200
    session = asyncio.run(ConversationSession.start(services, borrower_id="B001", loan_id="L001",
                                                    channel="chat", direction="inbound"))
    conversation_id = session.conversation_id
    created = client.post(f"/api/v1/conversations/{conversation_id}/reviews",
                          json={"verdict": "issue", "note": f"客户说身份证 {ID_NUMBER} 手机 {PHONE}",
                                "reviewer": "sup1"})
    assert created.status_code == 201, created.text
    with session_scope(services.engine) as db:
        notes = [r.note for r in db.execute(select(Review)).scalars()]
    assert notes and ID_NUMBER not in notes[0] and PHONE not in notes[0]
    assert ID_NUMBER[:6] in notes[0]  # masked, not dropped: the supervisor still sees the shape


def test_log_records_are_masked_including_arguments_and_tracebacks() -> None:
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Collect()
    handler.addFilter(MaskingFilter())
    logger = logging.getLogger("huikuan.test.masking")
    logger.addHandler(handler)
    try:
        logger.warning("borrower typed %s", f"我的手机 {PHONE}")
        try:
            raise ValueError(f"bad id {ID_NUMBER}")
        except ValueError:
            logger.exception("turn failed")
    finally:
        logger.removeHandler(handler)
    assert len(records) == 2
    assert all(PHONE not in r and ID_NUMBER not in r for r in records)
    assert "ValueError" in records[1]


def test_data_directory_and_secrets_are_owner_only(services: Services) -> None:
    data = Path(services.settings.data_dir)
    assert stat.S_IMODE(data.stat().st_mode) & 0o077 == 0
    for path in data.iterdir():
        if path.is_file() and path.name in ("api_key", "chat_secret"):
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


CARD = "6222021234567890123"
EMAIL = "zhang.wei@example.com"
RECORD_TABLES = {"borrowers", "loans", "installments", "payments", "alembic_version"}


@pytest.mark.nlu
def test_numbers_a_borrower_types_are_masked_everywhere_they_are_kept(
        client: TestClient, services: Services, contract_doc: dict[str, Any],
        caplog: pytest.LogCaptureFixture, all_databases: None) -> None:
    """Chat turns, flag notes, events, reviews, API responses and logs: a full scan."""
    from sqlalchemy import inspect, text

    assert client.post("/api/v1/portfolio", json=contract_doc).status_code == 200
    token = client.post("/api/v1/chat/sessions",
                        json={"borrower_id": "B001", "loan_id": "L001"}).json()["token"]
    lines = [f"我要投诉你们 我身份证{ID_NUMBER} 手机{PHONE}",
             f"我上周已经还了 卡号{CARD} 有问题发邮件{EMAIL}",
             f"这钱不是我借的 别打{PHONE}了"]
    conversation_id = ""
    caplog.set_level(logging.DEBUG)
    with client.websocket_connect("/ws/chat") as ws:
        ws.send_json({"type": "start", "token": token})
        for line in lines:
            ws.send_json({"type": "message", "text": line})
        ws.send_json({"type": "ping"})
        while True:
            frame = ws.receive_json()
            conversation_id = frame.get("conversation_id") or conversation_id
            if frame["type"] == "pong":
                break
    assert conversation_id
    assert client.post(f"/api/v1/conversations/{conversation_id}/reviews",
                       json={"verdict": "issue", "note": f"客户留了 {PHONE} {EMAIL}",
                             "reviewer": "sup"}).status_code == 201
    raw = (ID_NUMBER, PHONE, CARD, EMAIL)
    responses = [client.get(f"/api/v1/conversations/{conversation_id}").text,
                 client.get(f"/api/v1/conversations/{conversation_id}/reviews").text,
                 client.get("/api/v1/conversations", params={"loan_id": "L001"}).text]
    assert all(value not in body for body in responses for value in raw)
    with services.engine.connect() as db:
        tables = set(inspect(db).get_table_names()) - RECORD_TABLES
        stored = [str(row) for table in sorted(tables)
                  for row in db.execute(text(f'SELECT * FROM "{table}"'))]
    assert any(ID_NUMBER[:6] in row for row in stored), "the turns were stored"
    leaks = [(value, row[:120]) for row in stored for value in raw if value in row]
    assert not leaks
    assert all(value not in record.getMessage() for record in caplog.records for value in raw)
