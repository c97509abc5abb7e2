"""Twilio Media Streams codec (malformed and out-of-order frames) and the REST dialer."""

import asyncio
import base64
import json
from urllib.parse import parse_qs

import httpx
import pytest

from voice.telephony import twilio_stream as T
from voice.telephony.base import TelephonyError
from voice.telephony.twilio_rest import TwilioTelephony, stream_twiml

SID = "MZ123"


def start_frame(**fmt):
    media_format = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1, **fmt}
    return json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": SID,
                       "start": {"streamSid": SID, "callSid": "CA1", "accountSid": "AC1",
                                 "tracks": ["inbound"], "mediaFormat": media_format,
                                 "customParameters": {"loan_id": "L001"}}})


def media_frame(payload="//8=", sid=SID):
    return json.dumps({"event": "media", "sequenceNumber": "2", "streamSid": sid,
                       "media": {"track": "inbound", "chunk": "1", "timestamp": "20",
                                 "payload": payload}})


def started():
    p = T.TwilioStreamParser()
    assert isinstance(p.parse(T.encode_connected()), T.ConnectedEvent)
    ev = p.parse(start_frame())
    assert isinstance(ev, T.StartEvent)
    return p, ev


def test_full_sequence_parses_to_typed_events():
    p, start = started()
    assert start.custom_parameters == {"loan_id": "L001"}
    assert start.media_format == T.MediaFormat("audio/x-mulaw", 8000, 1)
    assert (start.call_sid, start.tracks) == ("CA1", ("inbound",))
    m = p.parse(media_frame(base64.b64encode(b"\x01\x02\xff").decode()))
    assert isinstance(m, T.MediaEvent)
    assert (m.payload, m.track, m.timestamp_ms, m.chunk) == (b"\x01\x02\xff", "inbound", 20, 1)
    assert p.parse(T.encode_inbound_mark(SID, "t1-m1", 3)).name == "t1-m1"
    assert p.parse(T.encode_dtmf(SID, "5", 4)).digit == "5"
    stop = p.parse(T.encode_stop(SID, "CA1", 5))
    assert isinstance(stop, T.StopEvent) and stop.call_sid == "CA1"


@pytest.mark.parametrize("frame, message", [
    ("not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ('{"foo": 1}', "'event'"),
    (b"\x00\x01", "binary"),
])
def test_malformed_frames(frame, message):
    with pytest.raises(T.ProtocolError, match=message):
        T.TwilioStreamParser().parse(frame)


@pytest.mark.parametrize("frame", [media_frame(), T.encode_inbound_mark(SID, "x", 1),
                                   T.encode_dtmf(SID, "1", 1), T.encode_stop(SID, "CA", 1)])
def test_events_before_start_are_rejected(frame):
    with pytest.raises(T.ProtocolError, match="before 'start'"):
        T.TwilioStreamParser().parse(frame)


@pytest.mark.parametrize("fmt, message", [
    ({"encoding": "audio/l16"}, "unsupported encoding"),
    ({"sampleRate": 16000}, "unsupported sample rate"),
    ({"channels": 2}, "channel count"),
    ({"sampleRate": "fast"}, "must be an integer"),
])
def test_start_with_wrong_media_format(fmt, message):
    with pytest.raises(T.ProtocolError, match=message):
        T.TwilioStreamParser().parse(start_frame(**fmt))


def test_out_of_order_and_inconsistent_frames():
    p, _ = started()
    with pytest.raises(T.ProtocolError, match="duplicate 'start'"):
        p.parse(start_frame())
    with pytest.raises(T.ProtocolError, match="'connected' must be the first"):
        p.parse(T.encode_connected())
    with pytest.raises(T.ProtocolError, match="expected 'MZ123'"):
        p.parse(media_frame(sid="MZother"))
    with pytest.raises(T.ProtocolError, match="not valid base64"):
        p.parse(media_frame(payload="@@not base64@@"))
    with pytest.raises(T.ProtocolError, match="invalid digit"):
        p.parse(json.dumps({"event": "dtmf", "streamSid": SID, "dtmf": {"digit": "x"}}))
    with pytest.raises(T.ProtocolError, match="'media' must be an object"):
        p.parse(json.dumps({"event": "media", "streamSid": SID, "media": "abc"}))
    p.parse(T.encode_stop(SID, "CA1", 9))
    with pytest.raises(T.ProtocolError, match="after 'stop'"):
        p.parse(media_frame())


def test_unknown_events_pass_through():
    p, _ = started()
    ev = p.parse(json.dumps({"event": "future-thing", "streamSid": SID}))
    assert isinstance(ev, T.UnknownEvent) and ev.name == "future-thing"


def test_outbound_encoders_roundtrip():
    media = json.loads(T.encode_media(SID, b"\xff" * 160))
    assert media == {"event": "media", "streamSid": SID,
                     "media": {"payload": base64.b64encode(b"\xff" * 160).decode()}}
    assert json.loads(T.encode_mark(SID, "m1")) == {"event": "mark", "streamSid": SID,
                                                     "mark": {"name": "m1"}}
    assert json.loads(T.encode_clear(SID)) == {"event": "clear", "streamSid": SID}
    assert T.parse_outbound(T.encode_media(SID, b"ab")).payload == b"ab"
    assert isinstance(T.parse_outbound(T.encode_clear(SID)), T.OutboundClear)


class _Call:
    def __init__(self):
        self.log = []
        self.done = asyncio.Event()

    async def start(self):
        self.log.append("start")

    async def feed(self, mulaw):
        self.log.append(("feed", len(mulaw)))

    async def on_mark(self, name):
        self.log.append(("mark", name))

    async def on_dtmf(self, digit):
        self.log.append(("dtmf", digit))

    async def stop(self, reason="caller_hangup"):
        self.log.append(("stop", reason))
        self.done.set()

    async def wait_ended(self):
        await self.done.wait()


def test_serve_media_stream_dispatches_until_stop():
    frames = [T.encode_connected(), start_frame(), media_frame(),
              T.encode_inbound_mark(SID, "m1", 3), T.encode_dtmf(SID, "1", 4),
              T.encode_stop(SID, "CA1", 5)]
    sent, call = [], _Call()

    async def main():
        it = iter(frames)

        async def recv():
            return next(it, None)

        async def send(text):
            sent.append(text)

        async def make_call(start, sink):
            assert start.custom_parameters["loan_id"] == "L001"
            await sink.send_clear()
            return call

        return await T.serve_media_stream(recv, send, make_call)

    assert asyncio.run(main()) is call
    assert call.log == ["start", ("feed", 2), ("mark", "m1"), ("dtmf", "1"),
                        ("stop", "caller_hangup")]
    assert json.loads(sent[0])["event"] == "clear"


def test_serve_media_stream_stops_call_on_protocol_error():
    call = _Call()
    frames = iter([start_frame(), "garbage"])

    async def main():
        async def recv():
            return next(frames, None)

        async def send(text):
            pass

        async def make_call(start, sink):
            return call

        await T.serve_media_stream(recv, send, make_call)

    with pytest.raises(T.ProtocolError):
        asyncio.run(main())
    assert call.log[-1] == ("stop", "protocol_error")


# --- REST ----------------------------------------------------------------------------------

def test_twiml_escapes_parameters():
    xml = stream_twiml("wss://x/ws/media", {"loan_id": 'L"1&<2>'})
    assert xml == ('<Response><Connect><Stream url="wss://x/ws/media"><Parameter name="loan_id" '
                   'value=\'L"1&amp;&lt;2&gt;\'/></Stream></Connect></Response>')


def _tel(handler):
    return TwilioTelephony("AC1", "tok", base_url="https://twilio.test",
                           transport=httpx.MockTransport(handler))


def test_dial_posts_calls_json_with_basic_auth():
    seen = {}

    def handler(request):
        seen["url"] = str(request.url)
        seen["auth"] = request.headers["authorization"]
        seen["form"] = parse_qs(request.content.decode())
        return httpx.Response(201, json={"sid": "CA42", "status": "queued"})

    sid = asyncio.run(_tel(handler).dial("+8613800000000", "+14155550100", "wss://h/ws/media",
                                         {"loan_id": "L001", "call_id": "c1"}))
    assert sid == "CA42"
    assert seen["url"] == "https://twilio.test/2010-04-01/Accounts/AC1/Calls.json"
    assert seen["auth"] == "Basic " + base64.b64encode(b"AC1:tok").decode()
    assert seen["form"]["To"] == ["+8613800000000"]
    assert '<Parameter name="loan_id" value="L001"/>' in seen["form"]["Twiml"][0]


def test_dial_errors_are_clear():
    def refuse(request):
        return httpx.Response(400, json={"code": 21211, "message": "Invalid 'To' number"})

    with pytest.raises(TelephonyError, match="Invalid 'To'") as err:
        asyncio.run(_tel(refuse).dial("+8613800000000", "+14155550100", "wss://h", {}))
    assert (err.value.status, err.value.code) == (400, 21211)

    def down(request):
        raise httpx.ConnectError("no route")

    with pytest.raises(TelephonyError, match="cannot reach Twilio"):
        asyncio.run(_tel(down).dial("+8613800000000", "+14155550100", "wss://h", {}))
    with pytest.raises(TelephonyError, match="E.164"):
        asyncio.run(_tel(down).dial("13800000000", "+14155550100", "wss://h", {}))


def test_missing_credentials(monkeypatch):
    monkeypatch.delenv("TWILIO_ACCOUNT_SID", raising=False)
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    with pytest.raises(TelephonyError, match="credentials"):
        TwilioTelephony()
