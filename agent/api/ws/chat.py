"""``/ws/chat``: the widget's JSON protocol over one conversation per session token."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from sqlmodel import Session

from agent.bootstrap import Services
from agent.chat_tokens import TokenError, verify
from agent.session import AgentTurn, ConversationNotFound, ConversationSession
from agent.store.db import session_scope
from agent.store.tables import ChatSession

router = APIRouter()
log = logging.getLogger("huikuan.chat")
START_TIMEOUT_S = 30


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


@router.websocket("/ws/chat")
async def chat_socket(ws: WebSocket) -> None:
    services: Services = ws.app.state.services
    await ws.accept()
    try:
        conversation = await _authenticate(ws, services)
        if conversation is None:
            return
        await _converse(ws, services, conversation)
    except WebSocketDisconnect:
        return


async def _authenticate(ws: WebSocket, services: Services) -> ConversationSession | None:
    try:
        raw = await asyncio.wait_for(ws.receive_text(), START_TIMEOUT_S)
        frame = json.loads(raw)
    except (TimeoutError, ValueError, KeyError):
        frame = None
    token = frame.get("token") if isinstance(frame, dict) and frame.get("type") == "start" else None
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
        return session
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
    return session


def _parse_message(raw: str, limit: int) -> tuple[str | None, tuple[str, str] | None]:
    """The borrower's text, or an error (code, message) that does not end the conversation."""
    try:
        frame: Any = json.loads(raw)
    except ValueError:
        return None, ("invalid_json", "frames must be JSON objects")
    if not isinstance(frame, dict):
        return None, ("invalid_json", "frames must be JSON objects")
    kind = frame.get("type")
    if kind == "ping":
        return None, None
    if kind != "message":
        return None, ("unknown_type", f"unknown frame type {kind!r}")
    text = frame.get("text")
    if not isinstance(text, str) or not text.strip():
        return None, ("invalid_message", "message frames need a non-empty text")
    if len(text) > limit:
        return None, ("too_long", f"messages are limited to {limit} characters")
    return text, None


async def _converse(ws: WebSocket, services: Services, session: ConversationSession) -> None:
    limit = services.settings.max_message_chars
    while True:
        raw = await ws.receive_text()
        text, error = _parse_message(raw, limit)
        if error is not None:
            await _error(ws, *error)
            continue
        if text is None:
            await ws.send_json({"type": "pong"})
            continue
        turns = await session.handle(text)
        if await _send_turns(ws, session.conversation_id, turns):
            await ws.close()
            return


@router.websocket("/ws/echo")
async def echo_socket(ws: WebSocket) -> None:
    """Bare echo on the same server: the baseline for the chat benchmark's overhead ratio."""
    await ws.accept()
    try:
        while True:
            await ws.send_text(await ws.receive_text())
    except WebSocketDisconnect:
        return
