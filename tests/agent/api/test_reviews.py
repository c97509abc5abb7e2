"""Supervisor reviews, the ``reviewed`` filter, call recordings and the console's static files."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import inspect

from agent.api.app import CONSOLE_DIR
from agent.bootstrap import Services
from agent.store.db import alembic_config, session_scope
from agent.store.tables import Conversation, Turn

pytestmark = [pytest.mark.db]

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


@pytest.fixture
def loaded(client: TestClient, contract_doc: dict[str, Any]) -> TestClient:
    assert client.post("/api/v1/portfolio", json=contract_doc).status_code == 200
    return client


def add_conversation(services: Services, conversation_id: str, minutes: int = 0,
                     recordings: dict[str, Any] | None = None) -> str:
    with session_scope(services.engine) as db:
        db.add(Conversation(id=conversation_id, channel="chat", loan_id="L001", borrower_id="B001",
                            started_at=T0 + timedelta(minutes=minutes),
                            recordings=recordings or {}))
        db.flush()
        db.add(Turn(conversation_id=conversation_id, seq=1, speaker="borrower",
                    text="我的卡号是6222************1234", intent="ask_balance",
                    at=T0 + timedelta(minutes=minutes)))
    return conversation_id


def test_review_is_stored_listed_and_filtered(loaded: TestClient, services: Services,
                                              all_databases: None) -> None:
    first = add_conversation(services, "c-first", minutes=0)
    second = add_conversation(services, "c-second", minutes=5)

    response = loaded.post(f"/api/v1/conversations/{first}/reviews",
                           json={"verdict": "issue", "note": " 催收话术过硬 ", "reviewer": "王主管"})
    assert response.status_code == 201, response.text
    review = response.json()
    assert review["id"] and review["conversation_id"] == first
    assert (review["verdict"], review["note"], review["reviewer"]) == ("issue", "催收话术过硬",
                                                                      "王主管")
    assert review["created_at"].startswith("2026-11-25T10:00:00")  # the service clock
    assert loaded.post(f"/api/v1/conversations/{first}/reviews",
                       json={"verdict": "ok", "reviewer": "李经理"}).status_code == 201

    detail = loaded.get(f"/api/v1/conversations/{first}").json()
    assert [(r["verdict"], r["reviewer"], r["note"]) for r in detail["reviews"]] == [
        ("issue", "王主管", "催收话术过硬"), ("ok", "李经理", "")]
    assert detail["turns"][0]["intent"] == "ask_balance"  # the rest of the detail is unchanged
    assert loaded.get(f"/api/v1/conversations/{second}").json()["reviews"] == []
    assert [r["verdict"] for r in
            loaded.get(f"/api/v1/conversations/{first}/reviews").json()] == ["issue", "ok"]

    rows = loaded.get("/api/v1/conversations").json()
    assert [(r["id"], r["reviewed"]) for r in rows] == [(second, False), (first, True)]
    assert [r["id"] for r in loaded.get("/api/v1/conversations",
                                        params={"reviewed": "false"}).json()] == [second]
    assert [r["id"] for r in loaded.get("/api/v1/conversations",
                                        params={"reviewed": "true"}).json()] == [first]
    assert [r["id"] for r in loaded.get("/api/v1/conversations",
                                        params={"reviewed": "false", "loan_id": "L001"}
                                        ).json()] == [second]


@pytest.mark.parametrize("body", [
    {"verdict": "maybe", "reviewer": "王主管"},
    {"verdict": "ok", "reviewer": "   "},
    {"verdict": "ok"},
    {"verdict": "ok", "reviewer": "王主管", "note": "长" * 2001},
    {"verdict": "ok", "reviewer": "王" * 101},
])
def test_invalid_reviews_are_refused(loaded: TestClient, services: Services,
                                     body: dict[str, Any]) -> None:
    conversation_id = add_conversation(services, "c-bad")
    response = loaded.post(f"/api/v1/conversations/{conversation_id}/reviews", json=body)
    assert response.status_code == 422, response.text
    assert loaded.get(f"/api/v1/conversations/{conversation_id}").json()["reviews"] == []


def test_review_needs_key_and_a_known_conversation(loaded: TestClient,
                                                   services: Services) -> None:
    conversation_id = add_conversation(services, "c-auth")
    body = {"verdict": "ok", "reviewer": "王主管"}
    assert loaded.post("/api/v1/conversations/nope/reviews", json=body).status_code == 404
    assert loaded.post(f"/api/v1/conversations/{conversation_id}/reviews", json=body,
                       headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert loaded.post(f"/api/v1/conversations/{conversation_id}/reviews", json=body,
                       headers={"Authorization": ""}).status_code == 401
    assert loaded.get(f"/api/v1/conversations/{conversation_id}").json()["reviews"] == []


def _wav(path: Path) -> bytes:
    import wave

    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x01\x00" * 800)
    return path.read_bytes()


def test_recordings_are_streamed_only_from_the_data_dir(loaded: TestClient, services: Services,
                                                       tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = Path(services.settings.data_dir)
    monkeypatch.chdir(data_dir.parent)  # a relative data_dir setting stores cwd-relative paths
    inside = _wav(data_dir / "recordings" / "call-1-caller.wav")
    _wav(data_dir / "recordings" / "relative-agent.wav")
    outside = tmp_path / "elsewhere" / "secret.wav"
    _wav(outside)
    (data_dir / "notes.txt").write_text("not audio")
    conversation_id = add_conversation(services, "c-voice", recordings={
        "caller": str(data_dir / "recordings" / "call-1-caller.wav"),
        "agent": "recordings/relative-agent.wav",
        "cwd": f"{data_dir.name}/recordings/relative-agent.wav",
        "outside": str(outside),
        "traversal": str(data_dir / "recordings" / ".." / ".." / "elsewhere" / "secret.wav"),
        "text": str(data_dir / "notes.txt"),
        "gone": str(data_dir / "recordings" / "missing.wav"),
        "weird": {"path": "x"},
    })
    base = f"/api/v1/conversations/{conversation_id}/recordings"

    response = loaded.get(f"{base}/caller")
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/wav"
    assert response.content == inside
    assert loaded.get(f"{base}/agent").status_code == 200
    assert loaded.get(f"{base}/cwd").status_code == 200
    for leg in ("outside", "traversal", "text", "gone", "weird", "nope"):
        assert loaded.get(f"{base}/{leg}").status_code == 404, leg
    assert loaded.get("/api/v1/conversations/unknown/recordings/caller").status_code == 404
    assert loaded.get(f"{base}/caller", headers={"Authorization": ""}).status_code == 401


def test_console_is_served_static_and_self_contained(client: TestClient) -> None:
    page = client.get("/console/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'src="console.js"' in page.text and 'href="console.css"' in page.text
    for name in ("console.js", "console.css"):
        assert client.get(f"/console/{name}").status_code == 200
    for path in CONSOLE_DIR.iterdir():
        source = path.read_text(encoding="utf-8")
        assert not re.search(r"(src|href)=[\"']?(https?:)?//", source), f"external URL in {path}"
        assert "innerHTML" not in source and "insertAdjacentHTML" not in source, path.name
        assert "document.write" not in source and "eval(" not in source, path.name


def test_reviews_migration_upgrades_and_downgrades(services: Services,
                                                   all_databases: None) -> None:
    url = services.engine.url.render_as_string(hide_password=False)
    assert "reviews" in inspect(services.engine).get_table_names()
    config = alembic_config(url)
    with services.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0001")
    assert "reviews" not in inspect(services.engine).get_table_names()
    with services.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    columns = {c["name"] for c in inspect(services.engine).get_columns("reviews")}
    assert columns == {"id", "conversation_id", "verdict", "note", "reviewer", "created_at"}
