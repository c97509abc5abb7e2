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

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from sqlmodel import Session

from agent.bootstrap import Services
from agent.session import AgentTurn, ConversationNotFound, ConversationSession
from agent.store.db import session_scope
from agent.store.tables import ContactAttempt, Loan
from voice.pipeline import DTMF_PREFIX, NO_INPUT_PREFIX, CallConfig, Reply, VoiceCall
from voice.telephony.twilio_stream import (
    ProtocolError,
    StartEvent,
    TwilioMediaSink,
    serve_media_stream,
)
from voice.turns import TurnConfig

router = APIRouter()
log = logging.getLogger("huikuan.media")
MAX_REPROMPTS = 2
# How a call's end maps onto the conversation outcome (others come from the dialogue).
OUTCOME_FOR_REASON = {"voicemail": "voicemail", "unreachable": "unreachable"}


class CallSetupError(Exception):
    pass


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
    def ended(self) -> bool:
        return self.session.ended

    async def open(self) -> list[Reply]:
        return _replies(await self.session.open())

    async def handle(self, text: str, confidence: float, started_at: float,
                     ended_at: float) -> list[Reply]:
        if text.startswith(DTMF_PREFIX):
            digit = text.removeprefix(DTMF_PREFIX)
            return _replies(await self.session.handle(f"[按键{digit}]", {"dtmf": digit}))
        if text.startswith(NO_INPUT_PREFIX):
            count = int(text.removeprefix(NO_INPUT_PREFIX) or 1)
            if count > MAX_REPROMPTS:
                return _replies(await self.session.say(["silence_goodbye"], "no_input"))
            return _replies(await self.session.say(["reprompt"]))
        meta = {"asr_confidence": round(confidence, 3), "started_s": round(started_at, 2),
                "ended_s": round(ended_at, 2)}
        return _replies(await self.session.handle(text, meta))

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


def _resolve(services: Services, start: StartEvent) -> tuple[str, str, int | None]:
    params = start.custom_parameters or {}
    loan_id = (params.get("loan_id") or "").strip()
    if not loan_id:
        raise CallSetupError("start.customParameters.loan_id is missing")
    with Session(services.engine) as db:
        loan = db.get(Loan, loan_id)
        if loan is None:
            raise CallSetupError(f"unknown loan {loan_id!r}")
        attempt_id = None
        raw_attempt = params.get("call_id")
        if raw_attempt and str(raw_attempt).isdigit():
            attempt = db.get(ContactAttempt, int(raw_attempt))
            if attempt is not None and attempt.loan_id == loan_id:
                attempt_id = attempt.id
        return loan_id, loan.borrower_id, attempt_id


@router.websocket("/ws/media")
async def media_socket(ws: WebSocket) -> None:
    services: Services = ws.app.state.services
    await ws.accept()
    handlers: list[VoiceTurnHandler] = []

    async def receive_text() -> str | None:
        try:
            message = await ws.receive()
        except (WebSocketDisconnect, RuntimeError):
            return None
        if message["type"] == "websocket.disconnect":
            return None
        return message.get("text") or (message.get("bytes") or b"").decode("utf-8", "replace")

    async def send_text(text: str) -> None:
        try:
            await ws.send_text(text)
        except (WebSocketDisconnect, RuntimeError):
            pass  # the far end hung up; the call winds down on the next receive

    async def make_call(start: StartEvent, sink: TwilioMediaSink) -> VoiceCall:
        loan_id, borrower_id, attempt_id = await asyncio.to_thread(_resolve, services, start)
        session = await ConversationSession.start(
            services, borrower_id=borrower_id, loan_id=loan_id, channel="voice",
            direction="outbound" if attempt_id else "inbound", call_id=start.call_sid or None)
        handler = VoiceTurnHandler(services, session, attempt_id)
        recordings = Path(services.settings.data_dir) / "recordings"
        call = VoiceCall(handler, services.recognizer, services.synthesizer, sink,
                         # One more no-input round than reprompts, so the goodbye is spoken.
                         CallConfig(recording_dir=recordings,
                                    turns=TurnConfig(max_reprompts=MAX_REPROMPTS + 1)),
                         call_id=session.conversation_id[:16])
        handler.call = call
        handlers.append(handler)
        return call

    close_code = 1000
    try:
        call = await serve_media_stream(receive_text, send_text, make_call)
        if call is not None:
            await call.wait_ended()
    except CallSetupError as exc:
        log.warning("call refused: %s", exc)
        close_code = 4404
    except ConversationNotFound as exc:
        log.warning("call refused: %s", exc)
        close_code = 4404
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

