"""``/ws/chat``: the widget's JSON protocol over one conversation per session token.

Everything a client sends is bounded before it costs anything: the start frame must come
quickly and small, message frames are size- and rate-limited per token, text is sanitised at
this boundary (NUL, lone surrogates), one live socket per token (a reconnect takes over), and a
conversation is closed when its token expires or it has been idle too long. Nothing a client
sends ends the conversation by accident: bad frames get an ``error`` frame and it goes on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from datetime import datetime
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from sqlalchemy import func, select
from sqlmodel import Session

from agent.api.guards import ConnectionLimiter, RateLimiter
from agent.bootstrap import Services
from agent.chat_tokens import ChatClaims, TokenError, verify
from agent.core.inputs import Text
from agent.session import AgentTurn, ConversationNotFound, ConversationSession
from agent.store.db import session_scope
from agent.store.tables import ChatSession, Conversation, Turn

router = APIRouter()
log = logging.getLogger("huikuan.chat")
MAX_START_FRAME = 4096  # a start frame is a type and a ~200-character token
_UNSAFE = re.compile("[\x00\ud800-\udfff]")


class FrameError(ValueError):
    """A frame the conversation survives: answered with an ``error`` frame."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


async def _error(ws: WebSocket, code: str, message: str) -> None:
    await ws.send_json({"type": "error", "code": code, "message": message})


async def _send_turns(ws: WebSocket, conversation_id: str, turns: list[AgentTurn]) -> bool:
    """Send agent messages, then ``end`` if the agent ended the conversation (returns True)."""
    for turn in turns:
        if turn.text:
            await ws.send_json({"type": "message", "conversation_id": conversation_id,
                                "text": turn.text, "seq": turn.seq})
    ending = next((t for t in turns if t.end_call), None)
    if ending is None:
        return False
    await ws.send_json({"type": "end", "reason": ending.end_reason or "completed",
                        "conversation_id": conversation_id})
    return True


def _bind_session(services: Services, session_id: str) -> tuple[str | None, ChatSession | None]:
    with Session(services.engine) as db:
        row = db.get(ChatSession, session_id)
        return (row.conversation_id if row else None), row


def _remember_conversation(services: Services, session_id: str, conversation_id: str) -> None:
    with session_scope(services.engine) as db:
        row = db.get(ChatSession, session_id)
        if row is not None:
            row.conversation_id = conversation_id


def _borrower_turns(services: Services, conversation_id: str) -> int:
    with Session(services.engine) as db:
        return int(db.execute(select(func.count()).select_from(Turn).where(
            Turn.conversation_id == conversation_id, Turn.speaker == "borrower")).scalar_one())


def _expired_chat_ids(services: Services, now: datetime) -> list[str]:
    with Session(services.engine) as db:
        return list(db.execute(
            select(Conversation.id).join(ChatSession, ChatSession.conversation_id ==
                                         Conversation.id)
            .where(Conversation.ended_at.is_(None), ChatSession.expires_at <= now)  # type: ignore[union-attr]
        ).scalars().all())


async def close_expired_chats(services: Services) -> int:
    """End the conversations of chat sessions whose token has expired (the widget went away
    without an ``end``); returns how many were closed."""
    ids = await asyncio.to_thread(_expired_chat_ids, services, services.clock())
    for conversation_id in ids:
        await ConversationSession(services, conversation_id).close("expired")
    return len(ids)


def sanitise(text: str) -> str:
    """Drop what no database or log should see: NUL and unpaired surrogates."""
    return _UNSAFE.sub("", text)


def _frame_text(message: dict[str, Any]) -> str:
    if message.get("bytes") is not None:
        raise FrameError("invalid_json", "binary frames are not supported: send JSON text")
    return message.get("text") or ""


def parse_message(raw: str, limit: int) -> str | None:
    """The borrower's text, None for a ping; FrameError for anything else."""
    try:
        frame: Any = json.loads(raw)
    except (ValueError, RecursionError):
        raise FrameError("invalid_json", "frames must be JSON objects") from None
    if not isinstance(frame, dict):
        raise FrameError("invalid_json", "frames must be JSON objects")
    kind = frame.get("type")
    if kind == "ping":
        return None
    if kind != "message":
        raise FrameError("unknown_type", f"unknown frame type {str(kind)[:40]!r}")
    text = frame.get("text")
    if not isinstance(text, str):
        raise FrameError("invalid_message", "message frames need a non-empty text")
    if len(text) > limit:
        raise FrameError("too_long", f"messages are limited to {limit} characters")
    text = sanitise(text)
    if not text.strip():
        raise FrameError("invalid_message", "message frames need a non-empty text")
    return text


@router.websocket("/ws/chat")
async def chat_socket(ws: WebSocket) -> None:
    services: Services = ws.app.state.services
    limiter: ConnectionLimiter = ws.app.state.connections
    client = ws.client.host if ws.client else "?"
    await ws.accept()
    if not limiter.acquire(client):
        await _error(ws, "too_many_connections", "too many open chats from this address")
        await ws.close(code=4429)
        return
    sockets: dict[str, WebSocket] = ws.app.state.chat_sockets
    claims: ChatClaims | None = None
    try:
        authenticated = await _authenticate(ws, services)
        if authenticated is None:
            return
        conversation, claims = authenticated
        previous = sockets.get(claims.session_id)
        sockets[claims.session_id] = ws
        if previous is not None:  # one live socket per token: the newest takes over
            await _close_quietly(previous, 4409)
        await _converse(ws, services, conversation, claims)
    except WebSocketDisconnect:
        return
    finally:
        limiter.release(client)
        if claims is not None and sockets.get(claims.session_id) is ws:
            del sockets[claims.session_id]


async def _close_quietly(ws: WebSocket, code: int) -> None:
    try:
        await _error(ws, "replaced", "this chat was opened elsewhere")
        await ws.close(code=code)
    except (RuntimeError, WebSocketDisconnect):
        pass


async def _read_start(ws: WebSocket, wait_s: float) -> object:
    try:
        message = await asyncio.wait_for(ws.receive(), wait_s)
    except TimeoutError:
        return None
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    raw = message.get("text")
    if not isinstance(raw, str) or len(raw) > MAX_START_FRAME:
        return None
    try:
        frame = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return frame.get("token") if isinstance(frame, dict) and frame.get("type") == "start" \
        else None


async def _authenticate(ws: WebSocket, services: Services
                        ) -> tuple[ConversationSession, ChatClaims] | None:
    token = await _read_start(ws, services.settings.ws_start_timeout_s)
    try:
        claims = verify(services.session_secret, token, services.clock())
        conversation_id, row = await asyncio.to_thread(_bind_session, services, claims.session_id)
        if row is None or row.borrower_id != claims.borrower_id:
            raise TokenError("unknown session")
    except TokenError as exc:
        await _error(ws, "unauthorized", f"invalid chat token: {exc}")
        await ws.close(code=4401)
        return None
    if conversation_id is not None:
        session = await ConversationSession.resume(services, conversation_id)
        if session.ended:
            await ws.send_json({"type": "end", "reason": "ended",
                                "conversation_id": conversation_id})
            await ws.close()
            return None
        await _send_turns(ws, conversation_id, await session.resume_greeting())
        return session, claims
    try:
        session = await ConversationSession.start(services, borrower_id=claims.borrower_id,
                                                  loan_id=claims.loan_id, channel="chat",
                                                  direction=claims.direction)
    except ConversationNotFound as exc:
        await _error(ws, "not_found", str(exc))
        await ws.close(code=4404)
        return None
    await asyncio.to_thread(_remember_conversation, services, claims.session_id,
                            session.conversation_id)
    if await _send_turns(ws, session.conversation_id, await session.open()):
        await ws.close()
        return None
    return session, claims


async def _end(ws: WebSocket, session: ConversationSession, reason: str) -> None:
    await session.close(reason)
    await ws.send_json({"type": "end", "reason": reason,
                        "conversation_id": session.conversation_id})
    await ws.close()


async def _converse(ws: WebSocket, services: Services, session: ConversationSession,
                    claims: ChatClaims) -> None:
    settings = services.settings
    rate: RateLimiter = ws.app.state.chat_rate
    turns_taken = await asyncio.to_thread(_borrower_turns, services, session.conversation_id)
    while True:
        left = (claims.expires_at - services.clock()).total_seconds()
        if left <= 0:
            await _end(ws, session, "expired")
            return
        try:
            message = await asyncio.wait_for(ws.receive(),
                                             min(settings.chat_idle_timeout_s, left))
        except TimeoutError:
            expired = claims.expires_at <= services.clock()
            await _end(ws, session, "expired" if expired else "idle")
            return
        if message["type"] == "websocket.disconnect":
            return  # the widget may reconnect with the same token and resume
        try:
            text = parse_message(_frame_text(message), settings.max_message_chars)
            if text is None:
                await ws.send_json({"type": "pong"})
                continue
            if not rate.allow(claims.session_id):
                raise FrameError("rate_limited", "too many messages: wait a moment and resend")
        except FrameError as exc:
            await _error(ws, exc.code, str(exc))
            continue
        turns_taken += 1
        if turns_taken > settings.max_turns_per_conversation:
            await _error(ws, "turn_limit", "this conversation has reached its length limit")
            await _end(ws, session, "turn_limit")
            return
        turns = await session.handle_input(Text(text))
        if await _send_turns(ws, session.conversation_id, turns):
            await ws.close()
            return


@router.websocket("/ws/echo")
async def echo_socket(ws: WebSocket) -> None:
    """Bare echo on the same server: the chat benchmark's baseline, only when it asks for it
    (``HUIKUAN_BENCH_ECHO=1``); otherwise the route refuses like an unknown one."""
    services: Services = ws.app.state.services
    if not services.settings.bench_echo:
        await ws.close(code=4404)
        return
    await ws.accept()
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if isinstance(text, str) and len(text) <= services.settings.max_message_chars * 4:
                await ws.send_text(text)
    except WebSocketDisconnect:
        return
