"""Load-test the borrower chat: N concurrent websocket conversations, then the same load on echo.

By default it seeds a demo portfolio in a temporary data dir and starts ``huikuan serve`` in a
separate process (so the client's event loop does not share the server's GIL); ``--url`` targets
a running server instead (its API key from ``--api-key``, ``HUIKUAN_API_KEY`` or
``<data dir>/api_key``). Per message it measures the time from sending to the first agent
reply; after each reply it sends a ``ping`` frame as an ordering barrier (the server answers
``pong``, or an ``error`` frame for an unknown type, after every reply to the message before),
so a turn's extra replies are never taken for the next message's.

    python scripts/bench_chat.py                  # 200 conversations x 5 messages
    python scripts/bench_chat.py --url http://127.0.0.1:8000 --sessions 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets
from websockets.exceptions import ConnectionClosed

# Conversation i sends these starting at line i (mod 5), so the load mixes every kind of turn.
BORROWER_LINES = ["我还欠多少", "怎么还款", "我明天还三千", "好的", "能分期吗"]


@dataclass
class Run:
    """Latencies (seconds) and counters for one load pass."""

    latencies: list[float] = field(default_factory=list)
    openings: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    ended_early: int = 0
    wall_s: float = 0.0

    def fail(self, why: str) -> None:
        self.errors[why] = self.errors.get(why, 0) + 1


def pct(values: list[float], q: int) -> float:
    """The q-th percentile in milliseconds (inclusive interpolation); NaN when empty."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0] * 1000
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def huikuan_cmd() -> list[str]:
    """The ``huikuan`` console script beside this interpreter, else ``python -m agent.cli``."""
    beside = Path(sys.executable).with_name("huikuan")
    found = str(beside) if beside.exists() else shutil.which("huikuan")
    return [found] if found else [sys.executable, "-m", "agent.cli"]


def start_server(borrowers: int, port: int, workdir: Path,
                 workers: int = 1) -> tuple[subprocess.Popen[bytes], str]:
    """Seed demo data and start ``huikuan serve`` in its own process; returns it and its key."""
    env = {**os.environ, "HUIKUAN_DATA_DIR": str(workdir / "data"), "HUIKUAN_BENCH_ECHO": "1"}
    env.pop("HUIKUAN_DATABASE_URL", None)
    print(f"seeding {borrowers} demo borrowers in {workdir} …", flush=True)
    subprocess.run([*huikuan_cmd(), "demo", "--borrowers", str(borrowers)], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    api_key = env.get("HUIKUAN_API_KEY") or (workdir / "data" / "api_key").read_text().strip()
    log = (workdir / "server.log").open("wb")
    proc = subprocess.Popen([*huikuan_cmd(), "serve", "--port", str(port), "--no-voice",
                             "--workers", str(workers)],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    return proc, api_key


def wait_healthy(base: str, proc: subprocess.Popen[bytes] | None, log: Path | None,
                 timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log else ""
            sys.exit(f"server exited with {proc.returncode}:\n{tail}")
        with suppress(httpx.HTTPError):
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    sys.exit(f"server at {base} not healthy after {timeout_s:.0f} s")


async def create_tokens(base: str, api_key: str, n: int, borrowers: int) -> list[str]:
    """One chat session per conversation, for demo loans L0000010, L0000020, …"""
    sem = asyncio.Semaphore(32)
    headers = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:

        async def one(i: int) -> str:
            number = i % borrowers + 1
            body = {"borrower_id": f"B{number:06d}", "loan_id": f"L{number:06d}0"}
            async with sem:
                response = await client.post("/api/v1/chat/sessions", json=body)
            if response.status_code not in (200, 201):
                sys.exit(f"POST /api/v1/chat/sessions {body}: {response.status_code} "
                         f"{response.text[:300]}")
            return response.json()["token"]

        return await asyncio.gather(*(one(i) for i in range(n)))


async def recv_json(ws: Any, wait_s: float) -> dict[str, Any]:
    frame = json.loads(await asyncio.wait_for(ws.recv(), wait_s))
    return frame if isinstance(frame, dict) else {}


THINK_S = 0.0  # mean pause between the agent's reply and the borrower's next message


async def think(first: bool = False) -> None:
    """A borrower reading and typing: uniform 0.5–1.5 × THINK_S (0 ⇒ closed loop, no pause).

    The first pause is drawn over the whole interval so conversations do not fire in step.
    """
    if THINK_S > 0:
        await asyncio.sleep(random.uniform(0, 1.5 * THINK_S) if first else
                            random.uniform(0.5 * THINK_S, 1.5 * THINK_S))


async def send_line(ws: Any, offset: int, k: int) -> float:
    """After the borrower's pause, send conversation ``offset``'s k-th line; returns send time."""
    await think(first=k == 0)
    text = BORROWER_LINES[(offset + k) % len(BORROWER_LINES)]
    t0 = time.perf_counter()
    await ws.send(json.dumps({"type": "message", "text": text}, ensure_ascii=False))
    return t0


async def chat_conversation(url: str, token: str, messages: int, offset: int, run: Run,
                            go: asyncio.Event, ready: Callable[[], None], wait_s: float) -> None:
    """Open, start, wait for the opening; then (after ``go``) send messages one by one."""
    try:
        async with websockets.connect(url, max_size=2**20, open_timeout=wait_s) as ws:
            t0 = time.perf_counter()
            await ws.send(json.dumps({"type": "start", "token": token}))
            while (frame := await recv_json(ws, wait_s)).get("type") != "message":
                if frame.get("type") in ("error", "end"):
                    run.fail(f"start: {frame.get('code') or frame.get('reason')}")
                    ready()
                    return
            run.openings.append(time.perf_counter() - t0)
            await barrier(ws, wait_s)
            ready()
            await go.wait()
            for k in range(messages):
                t0 = await send_line(ws, offset, k)
                while (frame := await recv_json(ws, wait_s)).get("type") != "message":
                    if frame.get("type") == "end":
                        run.ended_early += 1
                        return
                    if frame.get("type") == "error":
                        run.fail(f"reply: {frame.get('code')}")
                        break
                else:
                    run.latencies.append(time.perf_counter() - t0)
                if await barrier(ws, wait_s):
                    run.ended_early += 1
                    return
    except (TimeoutError, ConnectionClosed, OSError) as exc:
        run.fail(type(exc).__name__)
        ready()


async def barrier(ws: Any, wait_s: float) -> bool:
    """Ping, then read until the pong (or the error for an unknown type); True if it ended."""
    await ws.send('{"type":"ping"}')
    while True:
        frame = await recv_json(ws, wait_s)
        if frame.get("type") in ("pong", "error"):
            return False
        if frame.get("type") == "end":
            return True


async def echo_conversation(url: str, token: str, messages: int, offset: int, run: Run,
                            go: asyncio.Event, ready: Callable[[], None], wait_s: float) -> None:
    """The same frames against ``/ws/echo``: the baseline of websocket + JSON cost alone."""
    try:
        async with websockets.connect(url, max_size=2**20, open_timeout=wait_s) as ws:
            ready()
            await go.wait()
            for k in range(messages):
                t0 = await send_line(ws, offset, k)
                await recv_json(ws, wait_s)
                run.latencies.append(time.perf_counter() - t0)
    except (TimeoutError, ConnectionClosed, OSError) as exc:
        run.fail(type(exc).__name__)
        ready()


Conversation = Callable[..., Awaitable[None]]


async def load(conversation: Conversation, url: str, tokens: list[str], messages: int,
               wait_s: float) -> Run:
    """Open every conversation, then release all at once and time the messaging phase."""
    run, go, opened = Run(), asyncio.Event(), asyncio.Event()
    pending = set(range(len(tokens)))
    if not pending:
        opened.set()

    def ready_for(i: int) -> Callable[[], None]:
        def ready() -> None:
            pending.discard(i)
            if not pending:
                opened.set()

        return ready

    tasks = [asyncio.create_task(conversation(url, token, messages, i, run, go, ready_for(i),
                                              wait_s))
             for i, token in enumerate(tokens)]
    await opened.wait()
    start = time.perf_counter()
    go.set()
    await asyncio.gather(*tasks)
    run.wall_s = time.perf_counter() - start
    return run


def report(chat: Run, echo: Run, sessions: int, messages: int, log: Path | None) -> None:
    head = f"{'path':<10}{'msgs':>7}{'errors':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}" \
           f"{'max ms':>9}{'msg/s':>9}"
    print(f"\n{sessions} concurrent conversations x {messages} messages, think time "
          f"{THINK_S:g} s (send → first agent reply)\n{head}\n{'-' * len(head)}")
    for name, run in (("/ws/chat", chat), ("/ws/echo", echo)):
        n = len(run.latencies)
        rate = n / run.wall_s if run.wall_s else float("nan")
        worst = max(run.latencies, default=float("nan")) * 1000
        print(f"{name:<10}{n:>7}{sum(run.errors.values()):>8}{pct(run.latencies, 50):>9.1f}"
              f"{pct(run.latencies, 95):>9.1f}{pct(run.latencies, 99):>9.1f}{worst:>9.1f}"
              f"{rate:>9.0f}")
    print(f"opening (start → first agent message, {len(chat.openings)} conversations): "
          f"p50 {pct(chat.openings, 50):.1f} ms, p95 {pct(chat.openings, 95):.1f} ms")
    if chat.ended_early:
        print(f"conversations the agent ended before the last message: {chat.ended_early}")
    for name, run in (("chat", chat), ("echo", echo)):
        if run.errors:
            print(f"{name} errors: {run.errors}")
    if log is not None and log.exists():  # our own server: count turns that hit its fallback
        failed = log.read_text(errors="replace").count("turn failed")
        print(f"server log: {failed} turn(s) failed and got the fallback reply "
              f"(--keep keeps {log})" if failed else "server log: no failed turns")
    ratio = pct(chat.latencies, 95) / pct(echo.latencies, 95)
    print(f"overhead ratio (chat p95 / echo p95): {ratio:.1f}x")


async def bench(base: str, api_key: str, args: argparse.Namespace, log: Path | None) -> None:
    ws_base = "ws" + base.removeprefix("http")
    tokens = await create_tokens(base, api_key, args.sessions, args.borrowers)
    print(f"{len(tokens)} chat sessions created; running /ws/chat …", flush=True)
    chat = await load(chat_conversation, f"{ws_base}/ws/chat", tokens, args.messages, args.timeout)
    print("running /ws/echo …", flush=True)
    echo = await load(echo_conversation, f"{ws_base}/ws/echo", tokens, args.messages, args.timeout)
    report(chat, echo, args.sessions, args.messages, log)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running server (http://host:port); default: start one")
    parser.add_argument("--api-key", default=os.environ.get("HUIKUAN_API_KEY"))
    parser.add_argument("--data-dir", type=Path, help="read the API key from <dir>/api_key")
    parser.add_argument("--sessions", "-n", type=int, default=200)
    parser.add_argument("--messages", "-m", type=int, default=5)
    parser.add_argument("--borrowers", type=int, default=300, help="demo borrowers to seed/use")
    parser.add_argument("--timeout", type=float, default=60.0, help="per-reply timeout (s)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dir")
    parser.add_argument("--think", type=float, default=0.0,
                        help="mean seconds a borrower pauses between messages (0: closed loop)")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    args = parser.parse_args()
    global THINK_S
    THINK_S = args.think
    runner: Callable[[Awaitable[None]], None] = asyncio.run  # type: ignore[assignment]
    with suppress(ImportError):
        import uvloop

        runner = uvloop.run

    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    workdir = Path(tempfile.mkdtemp(prefix="huikuan-bench-"))
    try:
        if args.url:
            base = args.url.rstrip("/")
            key = args.api_key
            if not key and args.data_dir:
                key = (args.data_dir / "api_key").read_text().strip()
            if not key:
                sys.exit("--url needs --api-key, HUIKUAN_API_KEY or --data-dir")
            wait_healthy(base, None, None, 10)
        else:
            port = free_port()
            proc, key = start_server(args.borrowers, port, workdir, args.workers)
            base, log = f"http://127.0.0.1:{port}", workdir / "server.log"
            print(f"server pid {proc.pid} on {base} (log {log})", flush=True)
            wait_healthy(base, proc, log)
        runner(bench(base, key, args, log))
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
