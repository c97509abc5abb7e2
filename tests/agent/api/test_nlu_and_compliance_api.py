"""Language understanding and compliance over HTTP, bad input included."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from agent.api.app import create_app
from agent.bootstrap import build_services
from agent.config.settings import REPO_ROOT, Settings

pytestmark = pytest.mark.nlu


def test_parse_follows_the_contract(client: TestClient) -> None:
    response = client.post("/api/v1/nlu/parse", json={"text": "我明天先还三千，手机13812345678",
                                                       "ref": "2026-11-25T10:00:00+08:00"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["intent"] == "promise_to_pay" and body["willingness"] == "high"
    assert 0 < body["intent_confidence"] <= 1 and 0 < body["willingness_confidence"] <= 1
    entities = {(e["type"], e["text"], e["start"], e["end"], e["value"]) for e in body["entities"]}
    assert ("amount", "三千", 5, 7, 3000.0) in entities
    assert ("date", "明天", 1, 3, "2026-11-26") in entities
    assert "13812345678" not in body["redacted_text"] and "138****5678" in body["redacted_text"]


@pytest.mark.parametrize("payload,status", [
    ({"text": ""}, 422), ({"text": "   \n\t"}, 422), ({}, 422), ({"text": 5}, 422),
    ({"text": "好的", "ref": "not a time"}, 422),
])
def test_bad_requests_are_4xx(client: TestClient, payload: dict[str, Any], status: int) -> None:
    response = client.post("/api/v1/nlu/parse", json=payload)
    assert response.status_code == status and response.json()["detail"]


@pytest.mark.parametrize("text", ["😀😀😀", "I will pay tomorrow", "\x00\x07控制\x1b字符",
                                  "啊" * 5000, "？？？"])
def test_odd_text_gets_a_valid_answer(client: TestClient, text: str) -> None:
    response = client.post("/api/v1/nlu/parse", json={"text": text})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["intent"] and body["willingness"]
    assert body["truncated"] is (len(text) > 2000)


def test_invalid_utf8_body_is_4xx_not_500(client: TestClient) -> None:
    response = client.post("/api/v1/nlu/parse", content=b'{"text": "\xff\xfe"}',
                           headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500


@pytest.mark.parametrize("text,allowed,rule", [
    ("逾期信息会按规定报送征信系统，可能影响您今后的贷款和信用卡申请", True, None),
    ("再不还钱就让你坐牢，已经立案了马上抓你", False, "false_legal_claim"),
    ("你这个老赖，真不要脸", False, "insult"),
    ("不还就给你通讯录里每个人打电话", False, "exposure_threat"),
])
def test_compliance_check(client: TestClient, text: str, allowed: bool, rule: str | None) -> None:
    body = client.post("/api/v1/compliance/check", json={"text": text}).json()
    assert body["allowed"] is allowed
    if rule:
        assert rule in [v["rule"] for v in body["violations"]]
        assert all(v["message"] for v in body["violations"])


def test_rules_listing_has_citations(client: TestClient) -> None:
    rules = {r["id"]: r for r in client.get("/api/v1/compliance/rules").json()}
    assert {"quiet_hours", "daily_attempt_cap", "threat", "third_party_disclosure"} <= set(rules)
    assert "GB/T 45251" in rules["quiet_hours"]["citation"]


def test_blocked_strategy_wording_is_replaced_and_flagged(
        tmp_path: Path, contract_doc: dict[str, Any], nlu_pipeline: Any) -> None:
    """A bad edit to a strategy cannot reach the borrower: the gate swaps it and flags it."""
    strategies = tmp_path / "strategies"
    shutil.copytree(REPO_ROOT / "strategies", strategies)
    for name in ("standard.yaml", "gentle.yaml"):
        data = yaml.safe_load((strategies / name).read_text("utf-8"))
        data["templates"]["answer.balance:overdue"] = ["你欠{total_due}元，再不还就让你坐牢，已经立案了。"]
        (strategies / name).write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    services = build_services(Settings(data_dir=tmp_path / "data", api_key="k",
                                       strategies_dir=strategies), nlu=nlu_pipeline)
    with TestClient(create_app(services)) as client:
        client.headers["Authorization"] = "Bearer k"
        client.post("/api/v1/portfolio", json=contract_doc)
        token = client.post("/api/v1/chat/sessions",
                            json={"borrower_id": "B001", "loan_id": "L001"}).json()["token"]
        with client.websocket_connect("/ws/chat") as ws:
            ws.send_json({"type": "start", "token": token})
            conversation_id = ws.receive_json()["conversation_id"]
            ws.send_json({"type": "message", "text": "我一共还欠多少钱"})
            reply = ws.receive_json()["text"]
        assert "坐牢" not in reply and "立案" not in reply
        record = client.get(f"/api/v1/conversations/{conversation_id}").json()
    assert "compliance_blocked" in record["flags"]
    blocked = [t for t in record["turns"] if t["compliance"]]
    assert blocked and blocked[0]["compliance"][0]["rule"] == "false_legal_claim"
    assert "坐牢" not in blocked[0]["text"]
