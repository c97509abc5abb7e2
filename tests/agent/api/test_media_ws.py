"""Phone calls end to end: Mandarin speech streamed in real time through ``/ws/media``.

Real engines throughout: the server recognises the caller with the packaged Whisper model and
answers with espeak-ng; the caller is the project's softphone playing recorded Mandarin clips
(tests/voice/clips, see PROVENANCE.md there) paced like a phone line.
"""

from __future__ import annotations

import asyncio
import wave
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
from voice.audio import read_wav_label
from voice.softphone import run_softphone
from voice.telephony.twilio_stream import encode_connected, encode_start, new_stream_sid

pytestmark = [pytest.mark.e2e, pytest.mark.model, pytest.mark.slow]
CLIPS = Path(__file__).resolve().parents[2] / "voice" / "clips"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, nlu_pipeline: Any) -> Iterator[tuple[str, Services]]:
    data = tmp_path_factory.mktemp("media")
    services = build_services(Settings(data_dir=data, api_key="test-key",
                                       database_url=f"sqlite:///{data / 'db.sqlite'}",
                                       media_start_timeout_s=1.0),
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


def _token(base: str, loan_id: str = "L001", direction: str = "outbound") -> str:
    response = httpx.post(base + "/api/v1/media-tokens",
                          json={"loan_id": loan_id, "direction": direction},
                          headers={"Authorization": "Bearer test-key"})
    assert response.status_code == 200, response.text
    return response.json()["token"]


def _call_conversation(base: str, call_sid: str) -> dict[str, Any]:
    calls = _api(base, "/api/v1/conversations", loan_id="L001", channel="voice")
    summary = next(c for c in calls if c["call_id"] == call_sid)
    return _api(base, f"/api/v1/conversations/{summary['id']}")


def test_mandarin_call_verifies_identity_and_records_a_spoken_promise(
        server: tuple[str, Services], tmp_path: Path) -> None:
    base, _ = server
    clips = [CLIPS / "zh_identity.wav", CLIPS / "zh_promise.wav", CLIPS / "zh_ok.wav"]
    summary = asyncio.run(run_softphone(base.replace("http", "ws") + "/ws/media", "L001", clips,
                                        out_wav=tmp_path / "agent.wav",
                                        extra_params={"token": _token(base)}))
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
    # The agent's leg is AI-generated speech: it carries the implicit label, the caller's not.
    label = read_wav_label(record["recordings"]["agent"])
    assert label is not None and label["AIGC"] == "1" and label["ContentID"]
    assert read_wav_label(record["recordings"]["caller"]) is None
    with wave.open(record["recordings"]["agent"]) as w:  # still a plain WAV to every player
        assert w.getnframes() / w.getframerate() > 5


def test_operator_message_is_unreachable_and_says_nothing_about_the_debt(
        server: tuple[str, Services]) -> None:
    base, _ = server
    summary = asyncio.run(run_softphone(base.replace("http", "ws") + "/ws/media", "L001",
                                        [CLIPS / "zh_poweroff.wav"], wait_for_agent=False,
                                        extra_params={"token": _token(base)}))
    record = _call_conversation(base, summary["call_sid"])
    assert record["outcome"] in ("unreachable", "voicemail")
    assert all("逾期" not in t["text"] and "元" not in t["text"]
               for t in record["turns"] if t["speaker"] == "agent")


def _voice_conversations(base: str) -> int:
    return len(_api(base, "/api/v1/conversations", channel="voice", limit=1000))


def test_streams_without_a_valid_token_are_refused_before_any_audio(
        server: tuple[str, Services]) -> None:
    base, _ = server
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    async def call(frames: list[str], hang_up_after: int = 0) -> tuple[int | None, int]:
        """The close code and how many frames the server sent before closing."""
        received = 0
        async with connect(base.replace("http", "ws") + "/ws/media", max_size=2**25) as ws:
            for frame in frames:
                try:
                    await ws.send(frame)
                except ConnectionClosed:
                    break
            try:
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
                    received += 1
                    if received == hang_up_after:
                        return None, received
            except ConnectionClosed as closed:
                return (closed.rcvd.code if closed.rcvd else None), received

    def start(params: dict[str, str]) -> list[str]:
        return [encode_connected(), encode_start(new_stream_sid(), "CAX", params)]

    before = _voice_conversations(base)
    spent = _token(base)
    assert asyncio.run(call(start({"loan_id": "L001", "token": spent}), hang_up_after=1)) == (
        None, 1)  # a real call: the agent speaks
    refused = [
        start({"loan_id": "L001"}),                                   # no token: press 1 → ?
        start({"loan_id": "L001", "token": "x" * 43}),                # a made-up token
        start({"loan_id": "L001", "token": spent}),                   # a spent token
        start({"loan_id": "L002", "token": _token(base)}),            # another loan's token
        start({"loan_id": "NOPE", "token": _token(base)}),            # unknown loan
        start({"loan_id": "NOPE"}),
    ]
    for frames in refused:
        assert asyncio.run(call(frames)) == (4401, 0)
    # A stream that never says who it is, and a huge frame before authenticating.
    assert asyncio.run(call([encode_connected()])) == (4408, 0)
    assert asyncio.run(call([encode_connected(), "x" * (2 * 1024 * 1024)])) == (1009, 0)
    assert _voice_conversations(base) == before + 1  # the refused streams stored nothing


def test_a_key_press_confirms_identity_only_on_calls_the_service_placed(
        server: tuple[str, Services]) -> None:
    """On a stream the integration opened itself, anyone could press 1: it proves nothing."""
    base, _ = server
    from websockets.asyncio.client import connect

    from voice.telephony.twilio_stream import encode_dtmf, encode_stop

    async def press_one() -> str:
        sid = new_stream_sid()
        async with connect(base.replace("http", "ws") + "/ws/media") as ws:
            await ws.send(encode_connected())
            await ws.send(encode_start(sid, "CA" + sid[2:], {"loan_id": "L001",
                                                             "token": _token(base, "L001", "inbound")}))
            await asyncio.sleep(1.0)
            await ws.send(encode_dtmf(sid, "1", 3))
            await asyncio.sleep(3.0)
            await ws.send(encode_stop(sid, "CA" + sid[2:], 4))
        return "CA" + sid[2:]

    record = _call_conversation(base, asyncio.run(press_one()))
    agent_text = " ".join(t["text"] for t in record["turns"] if t["speaker"] == "agent")
    assert "逾期" not in agent_text and "元" not in agent_text


def test_twilio_signed_handshake_is_accepted_without_a_token(
        tmp_path: Path, nlu_pipeline: Any) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    from agent.media_auth import twilio_signature

    services = build_services(Settings(data_dir=tmp_path, api_key="k", twilio_auth_token="secret",
                                       database_url=f"sqlite:///{tmp_path / 'db.sqlite'}"),
                              nlu=nlu_pipeline,
                              clock=FixedClock(datetime(2026, 11, 25, 2, 0, tzinfo=UTC)))
    services.warm_up(voice=True)
    with running_server(services, name="uvicorn-signed") as base:
        assert httpx.post(base + "/api/v1/portfolio", json=CONTRACT_DOC,
                          headers={"Authorization": "Bearer k"}).status_code == 200
        url = base.replace("http", "ws") + "/ws/media"
        services.settings.public_url = base

        async def call(signature: str) -> int:
            sid = new_stream_sid()
            frames = 0
            async with connect(url, additional_headers={"X-Twilio-Signature": signature}) as ws:
                await ws.send(encode_connected())
                await ws.send(encode_start(sid, "CA" + sid[2:], {"loan_id": "L001"}))
                try:
                    while frames < 3:
                        await asyncio.wait_for(ws.recv(), 10)
                        frames += 1
                except ConnectionClosed:
                    pass
            return frames

        assert asyncio.run(call(twilio_signature("secret", url))) == 3
        assert asyncio.run(call(twilio_signature("wrong", url))) == 0


def test_malformed_frames_end_the_call_cleanly(server: tuple[str, Services]) -> None:
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

    code = asyncio.run(call([encode_connected(), "{not json"]))
    assert code == 1007
    # The server is still healthy afterwards.
    assert httpx.get(base + "/healthz").json() == {"status": "ok"}
