"""Phone calls end to end: Mandarin speech streamed in real time through ``/ws/media``.

Real engines throughout: the server recognises the caller with the packaged Whisper model and
answers with espeak-ng; the caller is the project's softphone playing recorded Mandarin clips
(tests/voice/clips, see PROVENANCE.md there) paced like a phone line.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import CONTRACT_DOC, FixedClock
from support.live import running_server

from agent.bootstrap import Services, build_services
from agent.config.settings import Settings
from voice.softphone import run_softphone
from voice.telephony.twilio_stream import encode_connected, encode_start, new_stream_sid

pytestmark = [pytest.mark.e2e, pytest.mark.model, pytest.mark.slow]
CLIPS = Path(__file__).resolve().parents[2] / "voice" / "clips"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, nlu_pipeline: Any) -> Iterator[tuple[str, Services]]:
    data = tmp_path_factory.mktemp("media")
    services = build_services(Settings(data_dir=data, api_key="test-key",
                                       database_url=f"sqlite:///{data / 'db.sqlite'}"),
                              nlu=nlu_pipeline, clock=FixedClock(datetime(2026, 11, 25, 2, 0, tzinfo=UTC)))
    services.warm_up(voice=True)
    with running_server(services, name="uvicorn-media") as base:
        headers = {"Authorization": "Bearer test-key"}
        assert httpx.post(base + "/api/v1/portfolio", json=CONTRACT_DOC, headers=headers).status_code == 200
        yield base, services


def _api(base: str, path: str, **params: Any) -> Any:
    response = httpx.get(base + path, params=params, headers={"Authorization": "Bearer test-key"})
    assert response.status_code == 200, response.text
    return response.json()


def _call_conversation(base: str, call_sid: str) -> dict[str, Any]:
    calls = _api(base, "/api/v1/conversations", loan_id="L001", channel="voice")
    summary = next(c for c in calls if c["call_id"] == call_sid)
    return _api(base, f"/api/v1/conversations/{summary['id']}")


def test_mandarin_call_verifies_identity_and_records_a_spoken_promise(
        server: tuple[str, Services], tmp_path: Path) -> None:
    base, _ = server
    clips = [CLIPS / "zh_identity.wav", CLIPS / "zh_promise.wav", CLIPS / "zh_ok.wav"]
    summary = asyncio.run(run_softphone(base.replace("http", "ws") + "/ws/media", "L001", clips,
                                        out_wav=tmp_path / "agent.wav"))
    assert summary["agent_audio_s"] > 5
    record = _call_conversation(base, summary["call_sid"])
    agent = [t for t in record["turns"] if t["speaker"] == "agent"]
    borrower = [t for t in record["turns"] if t["speaker"] == "borrower"]
    # The opening (AI + recording disclosure) came first and its delivery was proven by the mark.
    assert agent[0]["act"] == "opening_outbound_voice" and "录音" in agent[0]["text"]
    assert agent[0]["meta"].get("delivered_mark")
    # Nothing about the debt before the borrower confirmed who they are.
    assert agent[1]["seq"] > borrower[0]["seq"] and borrower[0]["intent"] in (
        "confirm_identity", "affirm")
    assert borrower[1]["intent"] == "promise_to_pay" and "asr_confidence" in borrower[1]["meta"]
    assert record["promises"] and record["promises"][0]["amount"] == 3000.0
    assert record["promises"][0]["due_date"] == "2026-11-26"  # 明天, on the fixed clock
    assert record["outcome"] == "ptp" and record["channel"] == "voice"
    assert Path(record["recordings"]["caller"]).exists()
    assert Path(record["recordings"]["agent"]).exists()


def test_operator_message_is_unreachable_and_says_nothing_about_the_debt(
        server: tuple[str, Services]) -> None:
    base, _ = server
    summary = asyncio.run(run_softphone(base.replace("http", "ws") + "/ws/media", "L001",
                                        [CLIPS / "zh_poweroff.wav"], wait_for_agent=False))
    record = _call_conversation(base, summary["call_sid"])
    assert record["outcome"] in ("unreachable", "voicemail")
    assert all("逾期" not in t["text"] and "元" not in t["text"]
               for t in record["turns"] if t["speaker"] == "agent")


def test_unknown_loan_and_malformed_frames_end_the_call_cleanly(server: tuple[str, Services]) -> None:
    base, _ = server
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    async def call(frames: list[str]) -> int | None:
        async with connect(base.replace("http", "ws") + "/ws/media") as ws:
            for frame in frames:
                await ws.send(frame)
            try:
                while True:
                    await asyncio.wait_for(ws.recv(), 5)
            except ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd else None

    sid = new_stream_sid()
    assert asyncio.run(call([encode_connected(), encode_start(sid, "CA1", {"loan_id": "NOPE"})])) == 4404
    assert asyncio.run(call([encode_connected(), encode_start(sid, "CA2", {})])) == 4404
    code = asyncio.run(call([encode_connected(), "{not json"]))
    assert code == 1007
    # The server is still healthy afterwards.
    assert httpx.get(base + "/healthz").json() == {"status": "ok"}
