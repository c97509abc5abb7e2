"""Chat conversations through the real websocket, NLU, dialogue, compliance and database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

pytestmark = [pytest.mark.db, pytest.mark.nlu]

# The fixed clock: 2026-11-25 10:00 UTC = 18:00 in Shanghai. Installments of the contract
# example fell due monthly from 2026-06-10; only the first was paid.


@pytest.fixture
def loaded(client: TestClient, contract_doc: dict[str, Any]) -> TestClient:
    assert client.post("/api/v1/portfolio", json=contract_doc).status_code == 200
    return client


def token(client: TestClient, **extra: Any) -> str:
    response = client.post("/api/v1/chat/sessions",
                           json={"borrower_id": "B001", "loan_id": "L001", **extra})
    assert response.status_code == 200, response.text
    return response.json()["token"]


class Chat:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.ended: dict[str, Any] | None = None
        self.conversation_id = ""

    def receive_until_quiet(self) -> list[str]:
        """Everything the agent sends before answering our ping: one full reply."""
        self.ws.send_json({"type": "ping"})
        texts = []
        while True:
            frame = self.ws.receive_json()
            if frame["type"] == "pong":
                return texts
            if frame["type"] == "message":
                texts.append(frame["text"])
                self.conversation_id = frame["conversation_id"]
            elif frame["type"] == "end":
                self.ended = frame
                return texts
            elif frame["type"] == "error":
                texts.append(f"ERROR:{frame['code']}")

    def say(self, text: str) -> str:
        self.ws.send_json({"type": "message", "text": text})
        return "".join(self.receive_until_quiet())


@contextmanager
def chat(client: TestClient, chat_token: str) -> Iterator[Chat]:
    with client.websocket_connect("/ws/chat") as ws:
        ws.send_json({"type": "start", "token": chat_token})
        conversation = Chat(ws)
        conversation.opening = "".join(conversation.receive_until_quiet())  # type: ignore[attr-defined]
        yield conversation


def transcript(client: TestClient, conversation_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/conversations/{conversation_id}")
    assert response.status_code == 200
    return response.json()


def plan_row(client: TestClient, channel: str = "voice", at: str = "2026-11-25T10:00:00+08:00") -> dict[str, Any]:
    rows = client.get("/api/v1/contact-plan", params={"channel": channel, "at": at}).json()
    return next(r for r in rows if r["loan_id"] == "L001")


def test_service_answers_from_the_loan_record(loaded: TestClient) -> None:
    with chat(loaded, token(loaded)) as c:
        assert "AI" in c.opening and "回款消费金融" in c.opening  # type: ignore[attr-defined]
        position = loaded.get("/api/v1/loans/L001").json()
        reply = c.say("我现在一共欠你们多少钱")
        assert f"{position['total_due']:g}" in reply.replace(",", "")
        assert "支付宝" in c.say("可以用支付宝还吗")
        assert "征信" in c.say("逾期了会影响我的征信吗")
    record = transcript(loaded, c.conversation_id)
    borrower = [t for t in record["turns"] if t["speaker"] == "borrower"]
    assert [t["intent"] for t in borrower] == ["ask_balance", "ask_payment_method",
                                              "ask_credit_impact"]
    assert all(t["at"] and t["willingness"] == "none" for t in borrower)
    assert record["channel"] == "chat" and record["turns"][0]["speaker"] == "agent"


def test_promise_to_pay_is_read_back_recorded_and_holds_collection(loaded: TestClient) -> None:
    with chat(loaded, token(loaded)) as c:
        readback = c.say("我后天先还三千块")
        assert "3000" in readback and "11月27日" in readback
        assert "已" in c.say("对的没问题")
    record = transcript(loaded, c.conversation_id)
    assert record["promises"] == [{**record["promises"][0], "amount": 3000.0,
                                   "due_date": "2026-11-27", "status": "pending"}]
    # No chasing before the promised day; the day before is the one agreed reminder.
    row = plan_row(loaded)
    assert row["allowed"] is False and row["reason"] == "promise_pending"
    assert plan_row(loaded, at="2026-11-26T10:00:00+08:00")["allowed"] is True


def test_dispute_flags_and_pauses_collection(loaded: TestClient) -> None:
    with chat(loaded, token(loaded)) as c:
        reply = c.say("这笔钱根本不是我借的，有人冒用了我的身份证")
        assert "异议" in reply and "暂停" in reply
    assert "dispute" in transcript(loaded, c.conversation_id)["flags"]
    assert plan_row(loaded)["reason"] == "disputed"
    flagged = loaded.get("/api/v1/conversations", params={"flag": "dispute"}).json()
    assert [f["id"] for f in flagged] == [c.conversation_id]


def test_cease_request_ends_and_is_honoured_per_channel(loaded: TestClient) -> None:
    with chat(loaded, token(loaded)) as c:
        reply = c.say("以后不要再给我发消息了")
        assert c.ended is not None and "不会再" in reply
    record = transcript(loaded, c.conversation_id)
    assert "cease_requested" in record["flags"] and record["outcome"] == "cease"
    assert plan_row(loaded, channel="chat")["reason"] == "cease_requested"


def test_complaint_gives_channel_and_offers_human(loaded: TestClient) -> None:
    with chat(loaded, token(loaded)) as c:
        reply = c.say("你们这是暴力催收，我要去银保监会投诉你们")
        assert "400-800-1234" in reply and "人工" in reply
        c.say("好的 转人工吧")
        assert c.ended is not None and c.ended["reason"] == "handoff"
    assert {"complaint", "handoff"} <= set(transcript(loaded, c.conversation_id)["flags"])


def test_abuse_warned_once_then_ended(loaded: TestClient) -> None:
    with chat(loaded, token(loaded)) as c:
        assert "文明" in c.say("你他妈的神经病吧")
        assert c.ended is None
        c.say("滚你妈的傻逼")
        assert c.ended is not None
    assert "abuse" in transcript(loaded, c.conversation_id)["flags"]


def test_hardship_updates_ability_and_offers_options(loaded: TestClient) -> None:
    with chat(loaded, token(loaded)) as c:
        reply = c.say("我上个月被公司裁员了，现在一分钱收入都没有")
        assert "延期" in reply and "分期" in reply
    record = transcript(loaded, c.conversation_id)
    assert record["turns"][1]["intent"] == "hardship"
    assert record["outcome"] is None or record["outcome"] == "hardship"
    assert plan_row(loaded)["segment"] == "hardship"


def test_sensitive_numbers_are_masked_in_the_transcript(loaded: TestClient) -> None:
    with chat(loaded, token(loaded)) as c:
        c.say("我的手机号是13812345678，银行卡6222021234567890123还不了款")
    stored = transcript(loaded, c.conversation_id)["turns"][1]["text"]
    assert "13812345678" not in stored and "138****5678" in stored
    assert "6222021234567890123" not in stored


def test_bad_frames_get_errors_and_the_conversation_goes_on(loaded: TestClient) -> None:
    with chat(loaded, token(loaded)) as c:
        for frame, code in [("this is not json", "invalid_json"),
                            ('{"type": "dance"}', "unknown_type"),
                            ('{"type": "message", "text": "' + "我" * 2001 + '"}', "too_long"),
                            ('{"type": "message", "text": "   "}', "invalid_message")]:
            c.ws.send_text(frame)
            assert c.receive_until_quiet() == [f"ERROR:{code}"]
        assert "元" in c.say("还剩多少没还")


@pytest.mark.parametrize("bad", ["", "garbage", "a.b"])
def test_bad_token_is_refused_with_4401(loaded: TestClient, bad: str) -> None:
    with loaded.websocket_connect("/ws/chat") as ws:
        ws.send_json({"type": "start", "token": bad})
        frame = ws.receive_json()
        assert frame["type"] == "error" and frame["code"] == "unauthorized"
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_json()
        assert info.value.code == 4401


def test_reconnect_with_same_token_resumes_the_conversation(loaded: TestClient) -> None:
    chat_token = token(loaded)
    with chat(loaded, chat_token) as first:
        first.say("我还欠多少")
    with chat(loaded, chat_token) as second:
        assert second.conversation_id == first.conversation_id
        second.say("怎么还款")
    turns = transcript(loaded, first.conversation_id)["turns"]
    assert [t["intent"] for t in turns if t["speaker"] == "borrower"] == [
        "ask_balance", "ask_payment_method"]


def test_session_for_someone_elses_loan_is_refused(loaded: TestClient, contract_doc: dict[str, Any]) -> None:
    loaded.post("/api/v1/portfolio", json={"borrowers": [
        {"id": "B002", "name": "王芳", "phone": "13700000000"}]})
    response = loaded.post("/api/v1/chat/sessions", json={"borrower_id": "B002", "loan_id": "L001"})
    assert response.status_code == 403


def test_outbound_chat_confirms_identity_and_wrong_party_learns_nothing(loaded: TestClient) -> None:
    with chat(loaded, token(loaded, direction="outbound")) as c:
        assert "本人" in c.opening  # type: ignore[attr-defined]
        reply = c.say("我不是他，你们找错人了")
        assert c.ended is not None and c.ended["reason"] == "wrong_party"
        assert "逾期" not in reply and "元" not in reply
    record = transcript(loaded, c.conversation_id)
    assert record["outcome"] == "wrong_party" and "wrong_party" in record["flags"]
    assert all("逾期" not in t["text"] for t in record["turns"] if t["speaker"] == "agent")
    assert plan_row(loaded)["reason"] == "wrong_number"
