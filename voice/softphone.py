"""A test phone that speaks the Twilio side of Media Streams to our ``/ws/media``.

It plays WAV files as the borrower (any rate → 8 kHz μ-law, 20 ms frames paced in real time),
plays the agent's audio out of a jitter buffer at real time, echoes ``mark``s when playback
reaches them and honours ``clear`` like Twilio does, records what the agent said, and sends
``stop`` once the agent has finished. Used by end-to-end tests and for manual trials::

    python -m voice.softphone ws://127.0.0.1:8000/ws/media L001 hello.wav promise.wav
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voice.audio import (
    FRAME_BYTES_MULAW,
    MULAW_SILENCE,
    WavRecorder,
    frames,
    wav_to_mulaw_8k,
)
from voice.telephony.twilio_stream import (
    OutboundClear,
    OutboundMark,
    OutboundMedia,
    encode_connected,
    encode_inbound_mark,
    encode_inbound_media,
    encode_start,
    encode_stop,
    new_stream_sid,
    parse_outbound,
)

SILENCE_FRAME = bytes([MULAW_SILENCE]) * FRAME_BYTES_MULAW


@dataclass
class SoftphoneSummary:
    stream_sid: str
    call_sid: str
    sent_s: float = 0.0
    agent_audio_s: float = 0.0
    marks_echoed: list[str] = field(default_factory=list)
    clears: int = 0
    closed_by_agent: bool = False
    duration_s: float = 0.0
    out_wav: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class _Far:
    """Twilio's side of the line: a playout buffer of audio frames and marks."""

    def __init__(self, recorder: WavRecorder | None) -> None:
        self.buf: deque[bytes | str] = deque()
        self.rec = recorder
        self.last_agent_media = 0.0
        self.agent_frames = 0
        self.spoke_since = 0  # agent frames received since the caller's last clip

    def pending_audio(self) -> bool:
        return any(isinstance(x, bytes) for x in self.buf)


async def run_softphone(ws_url: str, loan_id: str, wav_path: str | Path | Sequence[str | Path],
                        out_wav: str | Path | None = None, realtime: bool = True,
                        extra_params: dict[str, str] | None = None, *,
                        idle_s: float = 1.5, first_wait_s: float = 30.0,
                        reply_wait_s: float = 20.0, wait_for_agent: bool = True,
                        connect_timeout_s: float = 10.0) -> dict[str, Any]:
    """Call ``ws_url`` as borrower of ``loan_id``, saying each WAV in turn.

    With ``wait_for_agent`` each clip starts after the agent has spoken and gone quiet for
    ``idle_s`` (like a person answering); silence frames keep the line alive meanwhile, as
    a real phone would. After the last clip the phone waits for the agent's reply, then
    sends ``stop``. Returns a summary dict.
    """
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    clips = [wav_path] if isinstance(wav_path, str | Path) else list(wav_path)
    audio = [wav_to_mulaw_8k(p) for p in clips]
    sid, call_sid = new_stream_sid(), "CA" + new_stream_sid()[2:]
    summary = SoftphoneSummary(sid, call_sid, out_wav=str(out_wav or ""))
    params = {"loan_id": loan_id, **(extra_params or {})}
    rec = WavRecorder(out_wav) if out_wav else None
    far = _Far(rec)
    seq = 0
    t_start = time.monotonic()

    def nseq() -> int:
        nonlocal seq
        seq += 1
        return seq

    async with asyncio.timeout(connect_timeout_s):
        ws = await connect(ws_url, max_size=2**22)
    try:
        await ws.send(encode_connected())
        await ws.send(encode_start(sid, call_sid, params, nseq()))
        closed = asyncio.Event()

        async def receiver() -> None:
            try:
                async for text in ws:
                    msg = parse_outbound(text if isinstance(text, str) else text.decode())
                    if isinstance(msg, OutboundMedia):
                        if realtime:
                            far.buf.append(msg.payload)
                        else:  # no paced playout: it "plays" on arrival
                            far.agent_frames += 1
                            if rec:
                                rec.write_mulaw(msg.payload)
                        far.last_agent_media = time.monotonic()
                        far.spoke_since += 1
                    elif isinstance(msg, OutboundMark):
                        if realtime:
                            far.buf.append(msg.name)
                        else:
                            summary.marks_echoed.append(msg.name)
                            await ws.send(encode_inbound_mark(sid, msg.name, nseq()))
                    elif isinstance(msg, OutboundClear):
                        summary.clears += 1
                        names = [x for x in far.buf if isinstance(x, str)]
                        far.buf.clear()
                        for name in names:  # Twilio returns cleared marks at once
                            summary.marks_echoed.append(name)
                            await ws.send(encode_inbound_mark(sid, name, nseq()))
            except Exception:
                pass
            finally:
                closed.set()

        async def playout() -> None:
            """Play the agent's audio at 20 ms per frame; echo marks as they are reached."""
            next_t = time.monotonic()
            while not closed.is_set():
                frame = SILENCE_FRAME
                while far.buf and isinstance(far.buf[0], str):
                    name = far.buf.popleft()
                    summary.marks_echoed.append(name)  # type: ignore[arg-type]
                    with contextlib.suppress(Exception):
                        await ws.send(encode_inbound_mark(sid, name, nseq()))  # type: ignore[arg-type]
                if far.buf:
                    frame = far.buf.popleft()  # type: ignore[assignment]
                    far.agent_frames += 1
                if rec:
                    rec.write_mulaw(frame)
                next_t += 0.02
                await asyncio.sleep(max(0.0, next_t - time.monotonic()))

        recv_task = asyncio.create_task(receiver())
        play_task = asyncio.create_task(playout()) if realtime else None

        def agent_quiet() -> bool:
            return (not far.pending_audio()
                    and time.monotonic() - far.last_agent_media >= idle_s)

        async def send_frames(data: bytes) -> None:
            nonlocal chunk
            next_t = time.monotonic()
            for frame in frames(data, FRAME_BYTES_MULAW):
                if closed.is_set():
                    return
                chunk += 1
                try:
                    await ws.send(encode_inbound_media(sid, frame, nseq(), chunk, chunk * 20))
                except ConnectionClosed:
                    closed.set()  # the agent hung up between two frames: stop talking
                    return
                summary.sent_s += 0.02
                if realtime:
                    next_t += 0.02
                    await asyncio.sleep(max(0.0, next_t - time.monotonic()))
                else:
                    await asyncio.sleep(0)

        async def wait_agent(limit_s: float) -> None:
            """Keep the line open with silence until the agent spoke and went quiet."""
            deadline = time.monotonic() + limit_s
            while not closed.is_set() and time.monotonic() < deadline:
                if far.spoke_since and agent_quiet():
                    return
                await send_frames(SILENCE_FRAME * 5)
                if not realtime:
                    await asyncio.sleep(0.1)

        chunk = 0
        for i, clip in enumerate(audio):
            if wait_for_agent:
                await wait_agent(first_wait_s if i == 0 else reply_wait_s)
            await send_frames(clip)
            far.spoke_since = 0  # from now on wait for the agent's answer to this clip
        await wait_agent(reply_wait_s)
        if not closed.is_set():
            with contextlib.suppress(Exception):
                await ws.send(encode_stop(sid, call_sid, nseq()))
        else:
            summary.closed_by_agent = True
        with contextlib.suppress(asyncio.TimeoutError, Exception):
            await asyncio.wait_for(ws.close(), 3)
        for t in (recv_task, play_task):
            if t is not None:
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
    finally:
        with contextlib.suppress(Exception):
            await ws.close()
        if rec:
            rec.close()
    summary.agent_audio_s = far.agent_frames * 0.02
    summary.duration_s = time.monotonic() - t_start
    return summary.as_dict()


def main() -> None:
    ap = argparse.ArgumentParser(description="Call /ws/media like Twilio would.")
    ap.add_argument("ws_url")
    ap.add_argument("loan_id")
    ap.add_argument("wavs", nargs="+")
    ap.add_argument("--out", default="agent.wav")
    ap.add_argument("--fast", action="store_true", help="do not pace in real time")
    args = ap.parse_args()
    summary = asyncio.run(run_softphone(args.ws_url, args.loan_id, args.wavs, args.out,
                                        realtime=not args.fast))
    print(json.dumps(summary, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
