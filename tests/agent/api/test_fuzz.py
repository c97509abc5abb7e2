"""Property-based fuzzing of the public surface: every OpenAPI operation and both websockets.

Bounded (a few hundred cases in total) so it runs in CI on every push; ``HUIKUAN_FUZZ_CASES``
raises the per-operation count for a longer run. The property: no input, however hostile,
gets a 5xx or drops a socket without a documented close code.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.websockets import WebSocketDisconnect

from agent.api.app import create_app
from agent.bootstrap import Services

pytestmark = [pytest.mark.db, pytest.mark.slow]
CASES = int(os.environ.get("HUIKUAN_FUZZ_CASES", "25"))
FUZZ_SETTINGS = settings(max_examples=CASES, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck))


@pytest.fixture
def app_client(services: Services, contract_doc: dict[str, Any]) -> Iterator[TestClient]:
    with TestClient(create_app(services), raise_server_exceptions=False) as client:
        client.headers["Authorization"] = "Bearer test-key"
        assert client.post("/api/v1/portfolio", json=contract_doc).status_code == 200
        yield client


def test_openapi_operations_never_answer_5xx(app_client: TestClient) -> None:
    import schemathesis

    spec = app_client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"], "the API documents how to authenticate"
    schema = schemathesis.openapi.from_dict(spec)
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    for result in schema.get_all_operations():
        _fuzz_operation(app_client, result.ok(), statuses, failures)
    print(f"\nfuzzed {sum(statuses.values())} requests: {dict(statuses)}")
    assert not failures, failures[:5]


def _fuzz_operation(client: TestClient, operation: Any, statuses: Counter[int],
                    failures: list[str]) -> None:
    @FUZZ_SETTINGS
    @given(case=operation.as_strategy())
    def probe(case: Any) -> None:
        kwargs = case.as_transport_kwargs(base_url="http://testserver")
        headers = {**(kwargs.get("headers") or {}), "Authorization": "Bearer test-key"}
        response = client.request(kwargs["method"], kwargs["url"], params=kwargs.get("params"),
                                  headers=headers,
                                  content=_body(kwargs))
        statuses[response.status_code // 100 * 100] += 1
        if response.status_code >= 500:
            failures.append(f"{operation.label}: {response.status_code} {kwargs}")

    probe()


def _body(kwargs: dict[str, Any]) -> bytes | None:
    if kwargs.get("json") is not None:
        return json.dumps(kwargs["json"]).encode()
    data = kwargs.get("data") or kwargs.get("content")
    return data.encode() if isinstance(data, str) else data


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
                     | st.text(max_size=50),
                     lambda inner: st.lists(inner, max_size=5)
                     | st.dictionaries(st.text(max_size=10), inner, max_size=5), max_leaves=30)
_CHAT_FRAME = st.one_of(
    st.text(max_size=200),
    _JSON.map(json.dumps),
    st.fixed_dictionaries({"type": st.sampled_from(["message", "start", "ping", "end", "x"])},
                          optional={"text": st.text(max_size=300) | _JSON,
                                    "token": st.text(max_size=60) | _JSON}).map(json.dumps),
)
# Close codes the chat socket documents: normal, policy, too big, and its own 44xx range.
CHAT_CLOSES = {1000, 1003, 1007, 1008, 1009} | set(range(4400, 4500))


def _chat_token(client: TestClient) -> str:
    response = client.post("/api/v1/chat/sessions", json={"borrower_id": "B001", "loan_id": "L001"})
    assert response.status_code == 200, response.text
    return response.json()["token"]


@pytest.mark.nlu
def test_chat_socket_survives_any_frame(app_client: TestClient) -> None:
    token = _chat_token(app_client)
    outcomes: Counter[str] = Counter()

    @FUZZ_SETTINGS
    @given(frames=st.lists(_CHAT_FRAME, min_size=1, max_size=4), authenticated=st.booleans())
    def probe(frames: list[str], authenticated: bool) -> None:
        try:
            with app_client.websocket_connect("/ws/chat") as ws:
                if authenticated:
                    ws.send_json({"type": "start", "token": token})
                for frame in frames:
                    ws.send_text(frame)
                ws.send_json({"type": "ping"})
                while True:  # every frame is answered (a reply or an error), then the pong
                    reply = ws.receive_json()
                    assert isinstance(reply, dict) and "type" in reply
                    if reply["type"] in ("pong", "end"):
                        break
            outcomes["open"] += 1
        except WebSocketDisconnect as closed:
            assert closed.code in CHAT_CLOSES, closed.code
            outcomes[f"closed {closed.code}"] += 1

    probe()
    print(f"\nchat frames: {dict(outcomes)}")
    # After all that, the borrower's own chat still works.
    with app_client.websocket_connect("/ws/chat") as ws:
        ws.send_json({"type": "start", "token": _chat_token(app_client)})
        ws.send_json({"type": "message", "text": "我还欠多少钱"})
        ws.send_json({"type": "ping"})
        kinds = []
        while not kinds or kinds[-1] != "pong":
            kinds.append(ws.receive_json()["type"])
        assert "message" in kinds, kinds


_MEDIA_FRAME = st.one_of(
    st.text(max_size=200),
    _JSON.map(json.dumps),
    st.fixed_dictionaries({"event": st.sampled_from(["connected", "start", "media", "dtmf",
                                                     "mark", "stop", "x"])},
                          optional={"start": _JSON, "media": _JSON, "streamSid": st.text(max_size=40),
                                    "sequenceNumber": _JSON}).map(json.dumps),
)
MEDIA_CLOSES = {1000, 1007, 1009, 4400, 4401, 4408, 4429}


def test_media_socket_refuses_any_unauthenticated_frames(app_client: TestClient) -> None:
    closes: Counter[int] = Counter()

    @FUZZ_SETTINGS
    @given(frames=st.lists(_MEDIA_FRAME, min_size=1, max_size=4))
    def probe(frames: list[str]) -> None:
        with app_client.websocket_connect("/ws/media") as ws:
            for frame in frames:
                ws.send_text(frame)
            ws.send_text(json.dumps({"event": "start", "streamSid": "MZ1", "start": {
                "streamSid": "MZ1", "callSid": "CA1", "customParameters": {"loan_id": "L001"},
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}))
            try:
                message = ws.receive()
            except WebSocketDisconnect as closed:
                code = closed.code
            else:
                assert message["type"] == "websocket.close", "no audio without a token"
                code = message.get("code", 1000)
            assert code in MEDIA_CLOSES, code
            closes[code] += 1

    probe()
    print(f"\nmedia frames: {dict(closes)}")
    assert set(closes) - {1000}, "hostile streams are closed with a reason"
