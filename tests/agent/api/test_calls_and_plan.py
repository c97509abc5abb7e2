"""Contact plan and outbound calls: rules at their boundaries, caps counted in the database."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from agent.bootstrap import Services

pytestmark = pytest.mark.db


@pytest.fixture
def loaded(client: TestClient, contract_doc: dict[str, Any]) -> TestClient:
    # A second borrower in Urumqi: same UTC instant, a different local hour.
    contract_doc["borrowers"].append({"id": "B002", "name": "艾力", "phone": "13912345678",
                                      "timezone": "Asia/Urumqi"})
    loan = json.loads(json.dumps(contract_doc["loans"][0]))
    loan.update(id="L002", borrower_id="B002")
    contract_doc["loans"].append(loan)
    assert client.post("/api/v1/portfolio", json=contract_doc).status_code == 200
    return client


def plan(client: TestClient, at: str, channel: str = "voice") -> dict[str, dict[str, Any]]:
    response = client.get("/api/v1/contact-plan", params={"at": at, "channel": channel})
    assert response.status_code == 200, response.text
    return {row["loan_id"]: row for row in response.json()}


@pytest.mark.parametrize("at,shanghai,urumqi", [
    ("2026-11-25T21:59:00+08:00", None, None),
    ("2026-11-25T22:00:00+08:00", "quiet_hours", None),  # Urumqi (UTC+6) is at 20:00
    ("2026-11-26T07:59:00+08:00", "quiet_hours", "quiet_hours"),
    ("2026-11-26T08:00:00+08:00", None, "quiet_hours"),  # Urumqi is at 06:00
    ("2026-11-26T10:00:00+08:00", None, None),
])
def test_quiet_hours_in_the_borrowers_own_timezone(loaded: TestClient, at: str,
                                                   shanghai: str | None, urumqi: str | None) -> None:
    rows = plan(loaded, at)
    assert (rows["L001"]["reason"], rows["L002"]["reason"]) == (shanghai, urumqi)
    assert rows["L001"]["allowed"] is (shanghai is None)
    row = rows["L001"]
    assert row["action"] == "call" and row["strategy"] in ("standard@3", "gentle@1")
    assert row["bucket"].startswith("M") and row["segment"]


def test_plan_row_shape_matches_contract(loaded: TestClient) -> None:
    row = plan(loaded, "2026-11-25T10:00:00+08:00", channel="sms")["L001"]
    assert {"loan_id", "borrower_id", "bucket", "strategy", "segment", "action", "allowed",
            "reason"} <= set(row)
    assert row["action"] == "sms"


def test_calls_refused_with_rule_id_and_refusals_recorded(loaded: TestClient,
                                                          services: Services) -> None:
    services.clock.when = datetime(2026, 11, 25, 14, 30, tzinfo=UTC)  # 22:30 in Shanghai
    response = loaded.post("/api/v1/calls", json={"loan_id": "L001"})
    assert response.status_code == 409
    assert response.json()["allowed"] is False and response.json()["reason"] == "quiet_hours"
    assert loaded.post("/api/v1/calls", json={"loan_id": "NOPE"}).status_code == 404


def test_without_a_provider_the_call_fails_clearly(loaded: TestClient, services: Services) -> None:
    services.clock.when = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai
    response = loaded.post("/api/v1/calls", json={"loan_id": "L001"})
    assert response.status_code == 503 and "HUIKUAN_TELEPHONY" in response.json()["detail"]


class _TwilioStandIn(BaseHTTPRequestHandler):
    calls: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["content-length"])).decode()
        _TwilioStandIn.calls.append({"path": self.path, "form": parse_qs(body),
                                     "auth": self.headers.get("authorization")})
        payload = json.dumps({"sid": f"CA{len(_TwilioStandIn.calls):032d}",
                              "status": "queued"}).encode()
        self.send_response(201)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def twilio(services: Services) -> Iterator[list[dict[str, Any]]]:
    server = HTTPServer(("127.0.0.1", 0), _TwilioStandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _TwilioStandIn.calls = []
    settings = services.settings
    settings.telephony = "twilio"
    settings.twilio_account_sid = "AC" + "1" * 32
    settings.twilio_auth_token = SecretStr("secret")
    settings.twilio_base_url = f"http://127.0.0.1:{server.server_port}"
    settings.twilio_from_number = "+8610000000000"
    yield _TwilioStandIn.calls
    server.shutdown()


def test_daily_attempt_cap_counts_every_dial_in_the_database(
        loaded: TestClient, services: Services, twilio: list[dict[str, Any]]) -> None:
    services.clock.when = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai
    for attempt in range(1, 7):
        response = loaded.post("/api/v1/calls", json={"loan_id": "L001"})
        assert response.status_code == 200, (attempt, response.text)
    seventh = loaded.post("/api/v1/calls", json={"loan_id": "L001"})
    assert seventh.status_code == 409 and seventh.json()["reason"] == "daily_attempt_cap"
    assert len(twilio) == 6
    form = twilio[0]["form"]
    assert form["To"] == ["+8613812345678"] and "<Connect><Stream" in form["Twiml"][0]
    assert 'name="loan_id" value="L001"' in form["Twiml"][0]
    assert 'name="call_id" value="' in form["Twiml"][0]
    row = plan(loaded, "2026-11-25T11:30:00+08:00")["L001"]
    assert row["allowed"] is False and row["reason"] == "daily_attempt_cap"
    # The other borrower is not affected, and the next local day starts afresh.
    assert plan(loaded, "2026-11-25T11:30:00+08:00")["L002"]["allowed"] is True
    assert plan(loaded, "2026-11-26T09:00:00+08:00")["L001"]["allowed"] is True


def test_us_ai_voice_calls_need_consent_for_the_number_called(
        client: TestClient, services: Services, contract_doc: dict[str, Any],
        twilio: list[dict[str, Any]]) -> None:
    services.settings.jurisdiction = "us"
    services.clock.when = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)  # 12:00 in New York
    contract_doc["borrowers"][0]["timezone"] = "America/New_York"
    assert client.post("/api/v1/portfolio", json=contract_doc).status_code == 200

    def call() -> tuple[int, str | None]:
        response = client.post("/api/v1/calls", json={"loan_id": "L001"})
        return response.status_code, response.json().get("reason")

    def consent(**fields: Any) -> None:
        contract_doc["borrowers"][0]["consents"] = [
            {"kind": "ai_voice", "given_at": "2026-05-10T10:00:00-04:00",
             "source": "loan agreement e-sign", **fields}]
        response = client.post("/api/v1/portfolio", json=contract_doc)
        assert response.status_code == 200, response.text

    assert call() == (409, "ai_voice_consent")
    consent(phone="+1 555 0100")  # another number: a reassigned line carries no consent
    assert call() == (409, "ai_voice_consent")
    consent(phone="138-1234-5678")
    assert call()[0] == 200 and len(twilio) == 1
    assert plan(client, "2026-11-25T12:30:00-05:00")["L001"]["reason"] != "ai_voice_consent"
    consent(phone="13812345678", revoked_at="2026-11-25T12:10:00-05:00")
    assert call() == (409, "ai_voice_consent")
    assert len(twilio) == 1
    # A sent document without consents leaves the stored ones as they are.
    del contract_doc["borrowers"][0]["consents"]
    assert client.post("/api/v1/portfolio", json=contract_doc).status_code == 200
    assert call() == (409, "ai_voice_consent")


def test_a_consent_without_offset_or_of_an_unknown_kind_is_refused_by_name(
        client: TestClient, contract_doc: dict[str, Any]) -> None:
    contract_doc["borrowers"][0]["consents"] = [
        {"kind": "ai_voice", "phone": "13812345678", "given_at": "2026-05-10T10:00:00"},
        {"kind": "robocall", "phone": "13812345678", "given_at": "2026-05-10T10:00:00Z"}]
    response = client.post("/api/v1/portfolio", json=contract_doc)
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["detail"]["errors"]} \
        if isinstance(response.json()["detail"], dict) else response.text
    assert "consents[0].given_at" in str(fields) and "consents[1].kind" in str(fields)
