"""The conversation as the phone pipeline sees it: DTMF, no-input reprompts, call outcomes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agent.api.ws.media import VoiceTurnHandler
from agent.bootstrap import Services
from agent.importer import import_document
from agent.session import ConversationSession
from agent.store.db import session_scope
from agent.store.tables import Conversation

pytestmark = [pytest.mark.db, pytest.mark.nlu]


def _handler(services: Services, contract_doc: dict[str, Any]) -> VoiceTurnHandler:
    import_document(services.engine, contract_doc)

    async def start() -> VoiceTurnHandler:
        session = await ConversationSession.start(services, borrower_id="B001", loan_id="L001",
                                                  channel="voice", direction="outbound")
        return VoiceTurnHandler(services, session, attempt_id=None)

    return asyncio.run(start())


def test_dtmf_1_confirms_identity_and_opening_is_uninterruptible(
        services: Services, contract_doc: dict[str, Any], nlu_pipeline: Any) -> None:
    handler = _handler(services, contract_doc)

    async def call() -> tuple[list[Any], list[Any]]:
        opening = await handler.open()
        await handler.record_delivery(opening[0].turn_seq, "m1")
        return opening, await handler.handle("DTMF:1", 1.0, 3.0, 3.0)

    opening, reply = asyncio.run(call())
    assert opening[0].uninterruptible and "录音" in opening[0].text
    assert "逾期" in reply[0].text  # disclosed only after the key press confirmed identity
    with session_scope(services.engine) as db:
        conversation = db.get(Conversation, handler.session.conversation_id)
        assert conversation is not None and conversation.state["verified"] is True


def test_silence_reprompts_then_says_goodbye_and_ends(
        services: Services, contract_doc: dict[str, Any], nlu_pipeline: Any) -> None:
    handler = _handler(services, contract_doc)

    async def call() -> list[list[Any]]:
        await handler.open()
        replies = [await handler.handle(f"NO_INPUT:{n}", 0.0, 8.0 * n, 8.0 * n)
                   for n in (1, 2, 3)]
        await handler.close("completed")
        return replies

    first, second, last = asyncio.run(call())
    assert "还在吗" in first[0].text and second and last[-1].end_call
    with session_scope(services.engine) as db:
        conversation = db.get(Conversation, handler.session.conversation_id)
        assert conversation is not None and conversation.ended_at is not None
        assert conversation.outcome == "no_response"


def test_voicemail_outcome_is_recorded(services: Services, contract_doc: dict[str, Any],
                                       nlu_pipeline: Any) -> None:
    handler = _handler(services, contract_doc)

    async def call() -> None:
        await handler.open()
        await handler.close("voicemail")

    asyncio.run(call())
    with session_scope(services.engine) as db:
        conversation = db.get(Conversation, handler.session.conversation_id)
        assert conversation is not None and conversation.outcome == "voicemail"
