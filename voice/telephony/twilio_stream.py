"""Twilio Media Streams protocol: typed events in, JSON text frames out.

Codec only (plus ``TwilioMediaSink`` and a small driver loop), so the call logic in
``voice.pipeline`` stays protocol-free and other switches (FreeSWITCH, Asterisk) can get
their own adapter. Malformed or out-of-order frames raise ``ProtocolError`` with a message
that says what was wrong, because a silent drop on a phone line is very hard to debug.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

EXPECTED_ENCODING = "audio/x-mulaw"
EXPECTED_RATE = 8000


class ProtocolError(ValueError):
    """A frame that violates the Media Streams protocol."""


@dataclass(frozen=True)
class MediaFormat:
    encoding: str
    sample_rate: int
    channels: int


@dataclass(frozen=True)
class ConnectedEvent:
    protocol: str
    version: str


@dataclass(frozen=True)
class StartEvent:
    stream_sid: str
    call_sid: str
    account_sid: str
    tracks: tuple[str, ...]
    custom_parameters: dict[str, str]
    media_format: MediaFormat
    sequence_number: int | None = None


@dataclass(frozen=True)
class MediaEvent:
    stream_sid: str
    track: str
    chunk: int | None
    timestamp_ms: int | None
    payload: bytes = field(repr=False)  # decoded μ-law bytes
    sequence_number: int | None = None


@dataclass(frozen=True)
class MarkEvent:
    stream_sid: str
    name: str
    sequence_number: int | None = None


@dataclass(frozen=True)
class DtmfEvent:
    stream_sid: str
    digit: str
    track: str
    sequence_number: int | None = None


@dataclass(frozen=True)
class StopEvent:
    stream_sid: str
    call_sid: str
    account_sid: str
    sequence_number: int | None = None


@dataclass(frozen=True)
class UnknownEvent:
    """An event this codec does not know; forwarded so newer Twilio features don't break us."""

    name: str
    data: dict[str, Any]


TwilioEvent = (ConnectedEvent | StartEvent | MediaEvent | MarkEvent | DtmfEvent | StopEvent
               | UnknownEvent)

# outbound (agent → Twilio) messages, parsed by the softphone and tests
@dataclass(frozen=True)
class OutboundMedia:
    stream_sid: str
    payload: bytes = field(repr=False)


@dataclass(frozen=True)
class OutboundMark:
    stream_sid: str
    name: str


@dataclass(frozen=True)
class OutboundClear:
    stream_sid: str


def _obj(d: Any, key: str, where: str) -> dict[str, Any]:
    v = d.get(key)
    if not isinstance(v, dict):
        raise ProtocolError(f"{where}: field {key!r} must be an object")
    return v


def _str(d: dict[str, Any], key: str, where: str, required: bool = True) -> str:
    v = d.get(key)
    if v is None and not required:
        return ""
    if not isinstance(v, str) or (required and not v):
        raise ProtocolError(f"{where}: field {key!r} must be a non-empty string")
    return v


def _int(v: Any, what: str) -> int | None:
    if v is None:
        return None
    try:
        return int(v)
    except (TypeError, ValueError):
        raise ProtocolError(f"{what} must be an integer, got {v!r}") from None


def decode_payload(payload: Any, where: str = "media") -> bytes:
    if not isinstance(payload, str):
        raise ProtocolError(f"{where}: payload must be a base64 string")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError(f"{where}: payload is not valid base64") from None


def _load(text: str | bytes) -> dict[str, Any]:
    if isinstance(text, bytes):
        raise ProtocolError("binary frames are not part of the protocol; expected JSON text")
    try:
        msg = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"frame is not valid JSON: {exc.msg}") from None
    if not isinstance(msg, dict):
        raise ProtocolError("frame must be a JSON object")
    if not isinstance(msg.get("event"), str):
        raise ProtocolError("frame has no string 'event' field")
    return msg


class TwilioStreamParser:
    """Stateful parser for one websocket: enforces connected → start → media/mark/dtmf → stop."""

    def __init__(self) -> None:
        self.start: StartEvent | None = None
        self.stopped = False
        self._connected = False

    @property
    def stream_sid(self) -> str | None:
        return self.start.stream_sid if self.start else None

    def _check_sid(self, msg: dict[str, Any], event: str) -> str:
        if self.start is None:
            raise ProtocolError(f"{event!r} received before 'start'")
        sid = msg.get("streamSid")
        if sid is not None and sid != self.start.stream_sid:
            raise ProtocolError(f"{event!r} for stream {sid!r}, expected {self.start.stream_sid!r}")
        return self.start.stream_sid

    def parse(self, text: str | bytes) -> TwilioEvent:
        msg = _load(text)
        event = msg["event"]
        if self.stopped:
            raise ProtocolError(f"{event!r} received after 'stop'")
        seq = _int(msg.get("sequenceNumber"), "sequenceNumber")
        if event == "connected":
            if self._connected or self.start is not None:
                raise ProtocolError("'connected' must be the first frame, once")
            self._connected = True
            return ConnectedEvent(str(msg.get("protocol", "")), str(msg.get("version", "")))
        if event == "start":
            if self.start is not None:
                raise ProtocolError("duplicate 'start'")
            return self._start(msg, seq)
        if event == "media":
            sid = self._check_sid(msg, event)
            media = _obj(msg, "media", "media")
            return MediaEvent(sid, str(media.get("track") or "inbound"),
                              _int(media.get("chunk"), "media.chunk"),
                              _int(media.get("timestamp"), "media.timestamp"),
                              decode_payload(media.get("payload")), seq)
        if event == "mark":
            sid = self._check_sid(msg, event)
            return MarkEvent(sid, _str(_obj(msg, "mark", "mark"), "name", "mark"), seq)
        if event == "dtmf":
            sid = self._check_sid(msg, event)
            d = _obj(msg, "dtmf", "dtmf")
            digit = _str(d, "digit", "dtmf")
            if len(digit) != 1 or digit not in "0123456789*#ABCD":
                raise ProtocolError(f"dtmf: invalid digit {digit!r}")
            return DtmfEvent(sid, digit, str(d.get("track") or "inbound_track"), seq)
        if event == "stop":
            sid = self._check_sid(msg, event)
            stop = msg.get("stop") if isinstance(msg.get("stop"), dict) else {}
            self.stopped = True
            return StopEvent(sid, str(stop.get("callSid", self.start.call_sid)),  # type: ignore[union-attr]
                             str(stop.get("accountSid", "")), seq)
        return UnknownEvent(event, msg)

    def _start(self, msg: dict[str, Any], seq: int | None) -> StartEvent:
        start = _obj(msg, "start", "start")
        sid = start.get("streamSid") or msg.get("streamSid")
        if not isinstance(sid, str) or not sid:
            raise ProtocolError("start: missing streamSid")
        fmt = start.get("mediaFormat")
        if not isinstance(fmt, dict):
            raise ProtocolError("start: missing mediaFormat")
        encoding = fmt.get("encoding")
        rate = _int(fmt.get("sampleRate"), "start.mediaFormat.sampleRate")
        channels = _int(fmt.get("channels", 1), "start.mediaFormat.channels")
        if encoding != EXPECTED_ENCODING:
            raise ProtocolError(f"start: unsupported encoding {encoding!r}, "
                                f"expected {EXPECTED_ENCODING!r}")
        if rate != EXPECTED_RATE:
            raise ProtocolError(f"start: unsupported sample rate {rate}, expected {EXPECTED_RATE}")
        if channels != 1:
            raise ProtocolError(f"start: unsupported channel count {channels}, expected 1")
        params = start.get("customParameters") or {}
        if not isinstance(params, dict):
            raise ProtocolError("start: customParameters must be an object")
        tracks = start.get("tracks") or ["inbound"]
        if not isinstance(tracks, list):
            raise ProtocolError("start: tracks must be a list")
        self.start = StartEvent(
            stream_sid=sid, call_sid=str(start.get("callSid", "")),
            account_sid=str(start.get("accountSid", "")), tracks=tuple(map(str, tracks)),
            custom_parameters={str(k): str(v) for k, v in params.items()},
            media_format=MediaFormat(encoding, rate or EXPECTED_RATE, channels or 1),
            sequence_number=seq)
        return self.start


def parse_outbound(text: str) -> OutboundMedia | OutboundMark | OutboundClear:
    """Parse a frame the agent sends (used by the softphone and tests)."""
    msg = _load(text)
    sid = _str(msg, "streamSid", msg["event"])
    if msg["event"] == "media":
        return OutboundMedia(sid, decode_payload(_obj(msg, "media", "media").get("payload")))
    if msg["event"] == "mark":
        return OutboundMark(sid, _str(_obj(msg, "mark", "mark"), "name", "mark"))
    if msg["event"] == "clear":
        return OutboundClear(sid)
    raise ProtocolError(f"unknown outbound event {msg['event']!r}")


# --- encoders: agent → Twilio ----------------------------------------------------------------

def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def encode_media(stream_sid: str, mulaw: bytes) -> str:
    # Sent 50 times a second per call: format the JSON directly (base64 needs no escaping).
    return (f'{{"event": "media", "streamSid": {json.dumps(stream_sid)}, '
            f'"media": {{"payload": "{_b64(mulaw)}"}}}}')


def encode_mark(stream_sid: str, name: str) -> str:
    return json.dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})


def encode_clear(stream_sid: str) -> str:
    return json.dumps({"event": "clear", "streamSid": stream_sid})


# --- encoders: Twilio → agent (softphone, tests) ----------------------------------------------

def new_stream_sid() -> str:
    return "MZ" + uuid.uuid4().hex


def encode_connected() -> str:
    return json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})


def encode_start(stream_sid: str, call_sid: str, params: dict[str, str], seq: int = 1,
                 account_sid: str = "AC" + "0" * 32) -> str:
    return json.dumps({
        "event": "start", "sequenceNumber": str(seq), "streamSid": stream_sid,
        "start": {"accountSid": account_sid, "streamSid": stream_sid, "callSid": call_sid,
                  "tracks": ["inbound"], "customParameters": params,
                  "mediaFormat": {"encoding": EXPECTED_ENCODING, "sampleRate": EXPECTED_RATE,
                                  "channels": 1}}})


def encode_inbound_media(stream_sid: str, mulaw: bytes, seq: int, chunk: int,
                         timestamp_ms: int) -> str:
    return json.dumps({"event": "media", "sequenceNumber": str(seq), "streamSid": stream_sid,
                       "media": {"track": "inbound", "chunk": str(chunk),
                                 "timestamp": str(timestamp_ms), "payload": _b64(mulaw)}})


def encode_inbound_mark(stream_sid: str, name: str, seq: int) -> str:
    return json.dumps({"event": "mark", "sequenceNumber": str(seq), "streamSid": stream_sid,
                       "mark": {"name": name}})


def encode_dtmf(stream_sid: str, digit: str, seq: int) -> str:
    return json.dumps({"event": "dtmf", "sequenceNumber": str(seq), "streamSid": stream_sid,
                       "dtmf": {"track": "inbound_track", "digit": digit}})


def encode_stop(stream_sid: str, call_sid: str, seq: int, account_sid: str = "AC" + "0" * 32
                ) -> str:
    return json.dumps({"event": "stop", "sequenceNumber": str(seq), "streamSid": stream_sid,
                       "stop": {"accountSid": account_sid, "callSid": call_sid}})


# --- glue to a protocol-free call ------------------------------------------------------------

class TwilioMediaSink:
    """The outbound side of ``voice.pipeline.MediaSink`` for a Twilio websocket."""

    def __init__(self, send_text: Callable[[str], Awaitable[None]], stream_sid: str) -> None:
        self._send = send_text
        self.stream_sid = stream_sid

    async def send_media(self, mulaw: bytes) -> None:
        await self._send(encode_media(self.stream_sid, mulaw))

    async def send_mark(self, name: str) -> None:
        await self._send(encode_mark(self.stream_sid, name))

    async def send_clear(self) -> None:
        await self._send(encode_clear(self.stream_sid))


class CallLike(Protocol):
    """What the driver needs from a call (``voice.pipeline.VoiceCall`` satisfies it)."""

    async def start(self) -> None: ...
    async def feed(self, mulaw: bytes) -> None: ...
    async def on_mark(self, name: str) -> None: ...
    async def on_dtmf(self, digit: str) -> None: ...
    async def stop(self, reason: str = ...) -> None: ...
    async def wait_ended(self) -> None: ...


class StreamRejected(Exception):
    """Raised by ``receive_text`` to end the stream with a close code (bad credentials, a
    frame over the cap, no start in time); every other receive error means the socket closed."""

    def __init__(self, code: int, why: str) -> None:
        super().__init__(why)
        self.code = code


async def serve_media_stream(
    receive_text: Callable[[], Awaitable[str | None]],
    send_text: Callable[[str], Awaitable[None]],
    make_call: Callable[[StartEvent, TwilioMediaSink], Awaitable[CallLike]],
) -> CallLike | None:
    """Drive one websocket: parse frames, build the call on ``start``, dispatch until either
    side ends. ``receive_text`` returns None (or raises) when the socket closes.

    Returns the call (None if the stream never started); ``ProtocolError`` propagates so the
    endpoint can log it and close the socket with an error code.
    """
    parser = TwilioStreamParser()
    call: CallLike | None = None
    ended: asyncio.Task[None] | None = None
    try:
        while True:
            recv = asyncio.ensure_future(receive_text())
            waits: set[asyncio.Future[Any]] = {recv} | ({ended} if ended else set())
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            if recv not in done:  # the call ended itself (hang-up decision)
                recv.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await recv
                return call
            try:
                text = recv.result()
            except StreamRejected:
                if call is not None:
                    await call.stop("protocol_error")
                raise
            except Exception:  # socket closed under us
                text = None
            if text is None:
                if call is not None:
                    await call.stop("caller_hangup")
                return call
            try:
                ev = parser.parse(text)
            except ProtocolError:
                if call is not None:
                    await call.stop("protocol_error")
                raise
            if isinstance(ev, StartEvent):
                call = await make_call(ev, TwilioMediaSink(send_text, ev.stream_sid))
                await call.start()
                ended = asyncio.ensure_future(call.wait_ended())
            elif call is None:
                continue
            elif isinstance(ev, MediaEvent):
                if ev.track in ("inbound", "inbound_track"):
                    await call.feed(ev.payload)
            elif isinstance(ev, MarkEvent):
                await call.on_mark(ev.name)
            elif isinstance(ev, DtmfEvent):
                await call.on_dtmf(ev.digit)
            elif isinstance(ev, StopEvent):
                await call.stop("caller_hangup")
                return call
    finally:
        if ended is not None and not ended.done():
            ended.cancel()
