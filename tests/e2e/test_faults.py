"""kill -9 of the real server mid-chat and of an import mid-write: nothing acknowledged is lost,
nothing half-written stays, and the restarted server carries on."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import CONTRACT_DOC
from support.live import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.nlu]
KEY = "fault-key"


def _start(data: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HUIKUAN_DATA_DIR": str(data), "HUIKUAN_API_KEY": KEY,
           "HUIKUAN_DATABASE_URL": f"sqlite:///{data / 'db.sqlite'}",
           "HUIKUAN_CHAT_MESSAGE_RATE": "50", "HUIKUAN_CHAT_MESSAGE_BURST": "50"}
    server = subprocess.Popen([str(Path(sys.executable).parent / "huikuan"), "serve", "--port", str(port),
                               "--no-voice"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if server.poll() is not None:
            raise RuntimeError(f"server exited with {server.returncode}")
        time.sleep(0.5)
    server.kill()
    raise RuntimeError("server did not come up")


def _kill(server: subprocess.Popen[bytes]) -> None:
    os.killpg(server.pid, signal.SIGKILL)
    server.wait(10)


def _api(port: int) -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                        headers={"Authorization": f"Bearer {KEY}"})


MESSAGES = ["你好", "我还欠多少", "什么时候到期", "怎么还款", "我下周一还两千", "好的", "有罚息吗",
            "能不能分期", "谢谢"]


async def _chat(port: int, token: str, acknowledged: list[tuple[str, str]],
                messages: int = 100) -> None:
    """Send messages until the socket dies; record each one the agent answered."""
    from websockets.asyncio.client import connect

    conversation_id = ""
    try:
        async with connect(f"ws://127.0.0.1:{port}/ws/chat") as ws:
            await ws.send(json.dumps({"type": "start", "token": token}))
            for n in range(messages):  # well under the per-conversation turn cap
                text = f"{MESSAGES[n % len(MESSAGES)]} ({n})"
                await ws.send(json.dumps({"type": "message", "text": text}))
                await ws.send(json.dumps({"type": "ping"}))
                answered = False
                while True:
                    frame = json.loads(await ws.recv())
                    conversation_id = frame.get("conversation_id") or conversation_id
                    answered = answered or frame["type"] == "message"
                    if frame["type"] in ("error", "end"):
                        return  # refused or ended: not an acknowledgement
                    if frame["type"] == "pong":
                        break
                if answered:  # the agent replied: the message is acknowledged
                    acknowledged.append((conversation_id, text))
    except Exception:  # noqa: BLE001 - the kill closes the socket; that is the point
        return


def test_killed_server_loses_no_acknowledged_message_and_no_import_is_half_written(
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    server = _start(data, port)
    try:
        with _api(port) as api:
            assert api.post("/api/v1/portfolio", json=CONTRACT_DOC).status_code == 200
            tokens = [api.post("/api/v1/chat/sessions", json={"borrower_id": "B001",
                                                              "loan_id": "L001"}).json()["token"]
                      for _ in range(5)]
        acknowledged: list[tuple[str, str]] = []

        async def chats_then_kill() -> None:
            running = [asyncio.create_task(_chat(port, t, acknowledged)) for t in tokens]
            await asyncio.sleep(8)
            _kill(server)
            await asyncio.gather(*running)

        asyncio.run(chats_then_kill())
    finally:
        if server.poll() is None:
            _kill(server)
    assert len(acknowledged) >= 10, "the chats ran before the kill"

    # A big import killed mid-write: all of it or none of it.
    big = _portfolio(30_000)
    server = _start(data, port)
    try:
        with _api(port) as api:
            upload = subprocess.Popen([sys.executable, "-c", (
                "import httpx,sys,json;"
                f"httpx.post('http://127.0.0.1:{port}/api/v1/portfolio',"
                f"content=open(sys.argv[1],'rb').read(),headers={{'Authorization':'Bearer {KEY}',"
                "'content-type':'application/json'}, timeout=120)"),
                str(_write(tmp_path / "big.json", big))])
            time.sleep(1.5)
            _kill(server)
            upload.kill()
    finally:
        if server.poll() is None:
            _kill(server)

    server = _start(data, port)
    try:
        with _api(port) as api:
            stored: dict[str, list[str]] = {}
            for conversation_id in {c for c, _ in acknowledged}:
                record = api.get(f"/api/v1/conversations/{conversation_id}")
                assert record.status_code == 200, record.text
                stored[conversation_id] = [t["text"] for t in record.json()["turns"]
                                           if t["speaker"] == "borrower"]
            lost = [text for conversation_id, text in acknowledged
                    if text not in stored[conversation_id]]
            assert not lost, f"{len(lost)} acknowledged messages lost: {lost[:3]}"
            imported = sum(api.get(f"/api/v1/loans/BL{n:05d}").status_code == 200
                           for n in (0, 14_999, 29_999))
            assert imported in (0, 3), "an import is all or nothing"
            # And the restarted service works: a new chat is answered.
            token = api.post("/api/v1/chat/sessions",
                             json={"borrower_id": "B001", "loan_id": "L001"}).json()["token"]
        after: list[tuple[str, str]] = []
        asyncio.run(asyncio.wait_for(_chat(port, token, after, messages=1), 60))
        assert after
    finally:
        _kill(server)


def _portfolio(n: int) -> dict[str, Any]:
    loan = CONTRACT_DOC["loans"][0]
    return {
        "borrowers": [{**CONTRACT_DOC["borrowers"][0], "id": f"BB{i:05d}",
                       "phone": f"139{i:08d}"} for i in range(n)],
        "loans": [{**loan, "id": f"BL{i:05d}", "borrower_id": f"BB{i:05d}"} for i in range(n)],
        "payments": [],
    }


def _write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(json.dumps(doc, ensure_ascii=False))
    return path
