"""QA of whole conversations through the public API (contract v1.1)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

CLEAN_AI_CALL = [
    {"speaker": "agent", "text": "您好，我是回款消费金融的智能客服，本次通话将被录音。请问是张伟先生本人吗？"},
    {"speaker": "borrower", "text": "是我"},
    {"speaker": "agent", "text": "您的借款目前已逾期10天，应还1250.54元，请通过App内还款入口还款。"},
]
HUMAN_CALL_WITH_A_THREAT = [
    {"speaker": "agent", "text": "我们是回款消费金融委托的催收公司，本次通话有录音。"},
    {"speaker": "borrower", "text": "我这个月真没钱"},
    {"speaker": "agent", "text": "没钱？那明天我们的人就去你家门口蹲着，看你还能躲到哪去。"},
    {"speaker": "agent", "text": "这笔借款你要是再拖，我们可以为您申请分期。"},
]


def test_a_clean_ai_call_scores_full_marks(client: TestClient) -> None:
    body = client.post("/api/v1/qa/transcripts", json={"turns": CLEAN_AI_CALL}).json()
    assert body["violations"] == []
    assert body["disclosures"] == {"institution": True, "ai": True, "recording": True}
    assert body["score"] == 100


def test_a_human_collectors_threat_is_found_at_its_turn(client: TestClient) -> None:
    response = client.post("/api/v1/qa/transcripts", json={
        "turns": HUMAN_CALL_WITH_A_THREAT, "context": {"agent": "human"}})
    body = response.json()
    assert response.status_code == 200, body
    assert [v["turn"] for v in body["violations"]] == [2]
    assert body["violations"][0]["rule"] == "threat"
    assert body["disclosures"]["institution"] and body["disclosures"]["recording"]
    assert body["missing_disclosures"] == []  # a human collector owes no AI disclosure
    assert body["score"] == 75  # one violation, nothing missing


def test_borrower_words_are_never_judged(client: TestClient) -> None:
    body = client.post("/api/v1/qa/transcripts", json={"turns": [
        {"speaker": "borrower", "text": "你们这帮骗子，再打电话我就报警"}]}).json()
    assert body["violations"] == []


def test_bad_transcripts_get_a_clear_error(client: TestClient) -> None:
    assert client.post("/api/v1/qa/transcripts", json={"turns": []}).status_code in (400, 422)
    assert client.post("/api/v1/qa/transcripts",
                       json={"turns": [{"speaker": "robot", "text": "hi"}]}).status_code in (400, 422)


def test_compliance_check_takes_context(client: TestClient) -> None:
    line = "这笔借款已经逾期二十三天了。"
    assert client.post("/api/v1/compliance/check", json={"text": line}).json()["allowed"]
    told_sister = client.post("/api/v1/compliance/check", json={
        "text": line, "context": {"addressee": "third_party", "identity_verified": False}}).json()
    assert not told_sister["allowed"]
    assert told_sister["violations"][0]["rule"] == "third_party_disclosure"


CALL = Path(__file__).parents[2] / "voice" / "clips" / "qa_threat_call.wav"


def test_a_recorded_call_is_recognised_per_channel_and_scored(client: TestClient) -> None:
    response = client.post("/api/v1/qa/recordings?agent=human&agent_channel=left",
                           content=CALL.read_bytes(), headers={"content-type": "audio/wav"})
    assert response.status_code == 200, response.text
    card = response.json()
    threat = [v for v in card["violations"] if v["rule"] == "threat"]
    assert threat and card["turns"][threat[0]["turn"]]["speaker"] == "agent"
    assert card["speakers_separated"] and card["score"] < 100
    assert {t["speaker"] for t in card["turns"]} == {"agent", "borrower"}
    assert all(t["end_s"] > t["start_s"] for t in card["turns"])


def test_bad_recordings_get_a_clear_error(client: TestClient) -> None:
    wrong_type = client.post("/api/v1/qa/recordings", content=b"{}",
                             headers={"content-type": "application/json"})
    assert wrong_type.status_code == 415 and "audio" in wrong_type.json()["detail"]
    garbage = client.post("/api/v1/qa/recordings", content=b"not audio" * 100,
                          headers={"content-type": "audio/mpeg"})
    assert garbage.status_code == 422 and "decode" in garbage.json()["detail"]
    empty = client.post("/api/v1/qa/recordings", content=b"",
                        headers={"content-type": "audio/wav"})
    assert empty.status_code == 422
    anonymous = client.post("/api/v1/qa/recordings", content=CALL.read_bytes(),
                            headers={"content-type": "audio/wav", "Authorization": ""})
    assert anonymous.status_code == 401
