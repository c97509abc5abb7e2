"""``/ws/media``: phone calls over the Twilio Media Streams protocol.

The protocol codec and the audio pipeline live in ``voice/``; this module only binds a call's
``start`` to a conversation (loan, borrower, outbound attempt) and adapts the conversation
session to the pipeline's ``TurnHandler``. Voicemail and unreachable outcomes, and connected
calls, are written back to the contact attempt so they count toward the caps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from agent.api.guards import ConnectionLimiter
from agent.bootstrap import Services
from agent.core.inputs import Dtmf, Text
from agent.media_auth import (
    MediaAuthError,
    MediaGrant,
    grant_for_signed_stream,
    redeem_media_token,
    valid_twilio_signature,
)
from agent.session import AgentTurn, ConversationNotFound, ConversationSession
from agent.store.db import session_scope
from agent.store.tables import ContactAttempt
from voice.audio import ai_content_label
from voice.pipeline import (
    CallConfig,
    CallerInput,
    CallerKeyPress,
    CallerSilence,
    Reply,
    VoiceCall,
)
from voice.telephony.twilio_stream import (
    ProtocolError,
    StartEvent,
    StreamRejected,
    TwilioMediaSink,
    serve_media_stream,
)
from voice.turns import TurnConfig

router = APIRouter()
log = logging.getLogger("huikuan.media")
MAX_REPROMPTS = 2
# How a call's end maps onto the conversation outcome (others come from the dialogue).
OUTCOME_FOR_REASON = {"voicemail": "voicemail", "unreachable": "unreachable"}


class StreamRefused(StreamRejected):
    """Closed before any audio: bad credentials (4401), no start in time (4408), a frame over
    the size cap (1009)."""


def _replies(turns: list[AgentTurn]) -> list[Reply]:
    replies = [Reply(t.text, t.seq, t.uninterruptible, t.end_call) for t in turns if t.text]
    if turns and turns[-1].end_call and replies and not replies[-1].end_call:
        last = replies[-1]
        replies[-1] = Reply(last.text, last.turn_seq, last.uninterruptible, True)
    return replies


class VoiceTurnHandler:
    """The conversation session seen from the audio pipeline."""

    def __init__(self, services: Services, session: ConversationSession,
                 attempt_id: int | None) -> None:
        self.services = services
        self.session = session
        self.attempt_id = attempt_id
        self.call: VoiceCall | None = None

    @property
    def placed_by_us(self) -> bool:
        """Only on calls the service dialled to the number on file may a key press confirm
        identity; anyone can press 1 on a call they made themselves."""
        return self.attempt_id is not None

    @property
    def ended(self) -> bool:
        return self.session.ended

    async def open(self) -> list[Reply]:
        return _replies(await self.session.open())

    async def handle(self, event: CallerInput) -> list[Reply]:
        if isinstance(event, CallerKeyPress):
            if self.placed_by_us:
                return _replies(await self.session.handle_input(Dtmf(event.digit)))
            # A key press on a call we did not dial proves nothing: logged as a plain turn.
            return _replies(await self.session.handle_input(
                Text(f"[按键{event.digit}]", {"dtmf_ignored": event.digit})))
        if isinstance(event, CallerSilence):
            if event.count > MAX_REPROMPTS:
                return _replies(await self.session.say(["silence_goodbye"], "no_input"))
            return _replies(await self.session.say(["reprompt"]))
        meta = {"asr_confidence": round(event.confidence, 3),
                "started_s": round(event.started_at, 2), "ended_s": round(event.ended_at, 2)}
        return _replies(await self.session.handle_input(Text(event.text, meta)))

    async def hold(self) -> list[Reply]:
        """A short holding phrase while the caller's words are still being recognised."""
        return _replies(await self.session.say(["hold"]))

    async def record_delivery(self, turn_seq: int, mark: str) -> None:
        await self.session.record_delivery(turn_seq, mark)

    async def record_interruption(self, turn_seq: int, played_ms: int) -> None:
        await self.session.record_interruption(turn_seq, played_ms)

    async def close(self, outcome_or_reason: str) -> None:
        outcome = OUTCOME_FOR_REASON.get(outcome_or_reason)
        if self.call is not None and self.call.recordings:
            await self.session.set_recordings(
                {leg: str(path) for leg, path in self.call.recordings.items()})
        await self.session.close(outcome_or_reason, outcome)
        if self.attempt_id is not None:
            await asyncio.to_thread(_finish_attempt, self.services, self.attempt_id,
                                    outcome or "connected", self.session.conversation_id)


def _finish_attempt(services: Services, attempt_id: int, outcome: str,
                    conversation_id: str) -> None:
    with session_scope(services.engine) as db:
        attempt = db.get(ContactAttempt, attempt_id)
        if attempt is not None:
            attempt.outcome = outcome
            attempt.conversation_id = conversation_id


def _authorise(services: Services, start: StartEvent, signed: bool) -> MediaGrant:
    """The grant for this stream, or MediaAuthError; every failure reads the same outside."""
    params = start.custom_parameters or {}
    loan_id = str(params.get("loan_id") or "").strip()
    token = params.get("token")
    if token:
        return redeem_media_token(services.engine, token, loan_id, services.clock())
    if signed:
        return grant_for_signed_stream(services.engine, loan_id, str(params.get("call_id") or ""))
    raise MediaAuthError("no media token and no valid provider signature")


def _stream_urls(services: Services, ws: WebSocket) -> list[str]:
    """The URLs a provider may have signed: the configured public stream URL, and this one."""
    base = services.settings.public_url.replace("http", "ws", 1).rstrip("/") + "/ws/media"
    query = ws.url.query
    urls = [base, str(ws.url)]
    if query:
        urls.append(f"{base}?{query}")
    return urls


@router.websocket("/ws/media")
async def media_socket(ws: WebSocket) -> None:
    services: Services = ws.app.state.services
    settings = services.settings
    limiter: ConnectionLimiter = ws.app.state.connections
    client = ws.client.host if ws.client else "?"
    if not limiter.acquire(client):
        await ws.close(code=4429)
        return
    try:
        await _media_stream(ws, services, settings)
    finally:
        limiter.release(client)


async def _media_stream(ws: WebSocket, services: Services, settings: Any) -> None:
    signed = valid_twilio_signature(
        settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else None,
        ws.headers.get("x-twilio-signature"), _stream_urls(services, ws))
    await ws.accept()
    handlers: list[VoiceTurnHandler] = []
    started = False
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.media_start_timeout_s

    async def receive_text() -> str | None:
        try:
            if started:
                message = await ws.receive()
            else:  # an unauthenticated socket gets a few seconds to say who it is
                message = await asyncio.wait_for(ws.receive(), max(0.0, deadline - loop.time()))
        except TimeoutError:
            raise StreamRefused(4408, "no start event in time") from None
        except (WebSocketDisconnect, RuntimeError):
            return None
        if message["type"] == "websocket.disconnect":
            return None
        data = message.get("text") or (message.get("bytes") or b"").decode("utf-8", "replace")
        if len(data) > settings.max_media_frame_bytes:
            raise StreamRefused(1009, f"frame of {len(data)} bytes over the cap")
        return data

    async def send_text(text: str) -> None:
        try:
            await ws.send_text(text)
        except (WebSocketDisconnect, RuntimeError):
            pass  # the far end hung up; the call winds down on the next receive

    async def make_call(start: StartEvent, sink: TwilioMediaSink) -> VoiceCall:
        nonlocal started
        try:
            grant = await asyncio.to_thread(_authorise, services, start, signed)
        except MediaAuthError as exc:
            raise StreamRefused(4401, str(exc)) from None
        started = True
        session = await ConversationSession.start(
            services, borrower_id=grant.borrower_id, loan_id=grant.loan_id, channel="voice",
            direction=grant.direction, call_id=start.call_sid or None)
        handler = VoiceTurnHandler(services, session, grant.attempt_id)
        recordings = Path(services.settings.data_dir) / "recordings"
        call = VoiceCall(handler, services.recognizer, services.synthesizer, sink,
                         # One more no-input round than reprompts, so the goodbye is spoken.
                         CallConfig(recording_dir=recordings,
                                    turns=TurnConfig(max_reprompts=MAX_REPROMPTS + 1),
                                    ai_label=ai_content_label(services.settings.lender_name)),
                         call_id=session.conversation_id[:16])
        handler.call = call
        handlers.append(handler)
        return call

    close_code = 1000
    try:
        call = await serve_media_stream(receive_text, send_text, make_call)
        if call is not None:
            await call.wait_ended()
    except StreamRefused as exc:
        log.warning("media stream refused: %s", exc)
        close_code = exc.code
    except ConversationNotFound as exc:
        log.warning("call refused: %s", exc)
        close_code = 4401
    except ProtocolError as exc:
        log.warning("media stream protocol error: %s", exc)
        close_code = 1007
    except Exception:
        log.exception("media stream failed")
        close_code = 1011
    finally:
        for handler in handlers:
            if not handler.session.ended:
                await handler.close("error" if close_code == 1011 else "protocol_error")
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await ws.close(code=close_code)  # the caller may have hung up already

