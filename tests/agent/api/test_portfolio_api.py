"""Loan-record integration API through HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

pytestmark = pytest.mark.db


def test_push_contract_example_and_read_position_to_the_cent(
    client: TestClient, contract_doc: dict[str, Any], all_databases: None
) -> None:
    response = client.post("/api/v1/portfolio", json=contract_doc)
    assert response.status_code == 200, response.text
    assert response.json()["loans"] == 1 and response.json()["installments"] == 7
    # Installment 2 (due 07-10) unpaid 47 days, installment 3 (due 08-10) unpaid 16 days:
    # penalty = 1180 * 0.0005 * (47 + 16) = 37.17.
    position = client.get("/api/v1/loans/L001", params={"as_of": "2026-08-26T12:00:00+08:00"}).json()
    assert position["dpd"] == 47 and position["bucket"] == "M2"
    assert position["overdue_amount"] == 2360.0
    assert position["penalty"] == 37.17
    assert position["total_due"] == 2397.17
    assert position["outstanding_principal"] == 6000.0
    assert position["next_due_date"] == "2026-09-10"
    assert position["installments"][0] == {**position["installments"][0], "seq": 1,
                                           "amount_due": 1180.0, "paid": 1180.0, "status": "paid"}
    assert [i["status"] for i in position["installments"][:4]] == [
        "paid", "overdue", "overdue", "pending"]


def test_push_is_idempotent_and_updates_in_place(client: TestClient, contract_doc: dict[str, Any],
                                                 all_databases: None) -> None:
    assert client.post("/api/v1/portfolio", json=contract_doc).status_code == 200
    contract_doc["payments"].append({"id": "P002", "loan_id": "L001", "amount": 500,
                                     "paid_at": "2026-07-20T10:00:00+08:00"})
    assert client.post("/api/v1/portfolio", json=contract_doc).status_code == 200
    assert client.post("/api/v1/portfolio", json=contract_doc).status_code == 200
    position = client.get("/api/v1/loans/L001", params={"as_of": "2026-07-20T23:00:00+08:00"}).json()
    # Paid on day 10 of overdue: 9 days of penalty (07-11 … 07-19, 1180 × 0.0005 × 9 = 5.31) go
    # first; that day's own penalty accrues after the payment. The rest, 494.69, to the installment.
    assert position["installments"][1]["penalty_paid"] == 5.31
    assert position["installments"][1]["paid"] == 494.69
    assert position["total_paid"] == 1680.0


def test_payment_only_document_for_known_loan(client: TestClient, contract_doc: dict[str, Any]) -> None:
    assert client.post("/api/v1/portfolio", json=contract_doc).status_code == 200
    late = {"payments": [{"id": "P9", "loan_id": "L001", "amount": 1180,
                          "paid_at": "2026-07-10T08:00:00+08:00"}]}
    assert client.post("/api/v1/portfolio", json=late).status_code == 200
    position = client.get("/api/v1/loans/L001", params={"as_of": "2026-07-31"}).json()
    assert position["dpd"] == 0 and position["total_due"] == 0.0


def _mutations() -> list[tuple[str, Any, str]]:
    cases: list[tuple[str, Any, str]] = []

    def case(name: str, change: Any, expect: str) -> None:
        cases.append((name, change, expect))

    case("negative amount", lambda d: d["payments"][0].update(amount=-5), "payments[0] (id=P001)")
    case("zero payment", lambda d: d["payments"][0].update(amount=0), "greater than 0")
    case("string principal", lambda d: d["loans"][0].update(principal="lots"), "principal")
    case("impossible date", lambda d: d["loans"][0]["installments"][1].update(due_date="2026-02-30"),
         "installments[1].due_date")
    case("duplicate loan", lambda d: d["loans"].append(copy.deepcopy(d["loans"][0])), "duplicate id")
    case("unknown borrower", lambda d: d["loans"][0].update(borrower_id="B404"), "unknown borrower")
    case("unknown loan", lambda d: d["payments"][0].update(loan_id="L404"), "unknown loan")
    case("duplicate seq", lambda d: d["loans"][0]["installments"][2].update(seq=1), "duplicate installment seq")
    case("naive paid_at", lambda d: d["payments"][0].update(paid_at="2026-06-10T09:30:00"), "UTC offset")
    case("bad timezone", lambda d: d["borrowers"][0].update(timezone="Mars/Base"), "timezone")
    case("loans not a list", lambda d: d.update(loans={"id": "x"}), "loans")
    return cases


@pytest.mark.parametrize("name,change,expect", _mutations(), ids=[c[0] for c in _mutations()])
def test_invalid_document_is_rejected_whole(client: TestClient, contract_doc: dict[str, Any],
                                            name: str, change: Any, expect: str) -> None:
    # A valid second borrower rides along: it must not be written either.
    contract_doc["borrowers"].append({"id": "B002", "name": "王芳", "phone": "13700000000"})
    change(contract_doc)
    response = client.post("/api/v1/portfolio", json=contract_doc)
    assert response.status_code == 422, response.text
    assert expect in response.json()["detail"]
    assert client.get("/api/v1/loans/L001").status_code == 404


def test_nan_and_malformed_json_are_422(client: TestClient) -> None:
    body = json.dumps({"payments": [{"id": "P1", "loan_id": "L1", "amount": float("nan"),
                                     "paid_at": "2026-06-10T09:30:00+08:00"}]})
    response = client.post("/api/v1/portfolio", content=body,
                           headers={"content-type": "application/json"})
    assert response.status_code == 422 and "NaN" in response.json()["detail"]
    response = client.post("/api/v1/portfolio", content=b"{not json",
                           headers={"content-type": "application/json"})
    assert response.status_code == 422 and "malformed JSON" in response.json()["detail"]


def test_auth_required_and_checked(client: TestClient, contract_doc: dict[str, Any]) -> None:
    anonymous = TestClient(client.app)
    assert anonymous.post("/api/v1/portfolio", json=contract_doc).status_code == 401
    wrong = anonymous.get("/api/v1/loans/L001", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert anonymous.get("/healthz").json() == {"status": "ok"}


def test_unknown_loan_404_and_bad_as_of_422(client: TestClient) -> None:
    assert client.get("/api/v1/loans/NOPE").status_code == 404
    assert client.get("/api/v1/loans/NOPE", params={"as_of": "yesterday"}).status_code == 422


def test_body_over_limit_is_413(client: TestClient) -> None:
    limit = client.app.state.services.settings.max_body_bytes
    response = client.post("/api/v1/portfolio", content=b" " * (limit + 1),
                           headers={"content-type": "application/json"})
    assert response.status_code == 413 and "limit" in response.json()["detail"]
