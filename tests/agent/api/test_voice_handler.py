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
from voice.pipeline import CallerKeyPress, CallerSilence

pytestmark = [pytest.mark.db, pytest.mark.nlu]


def _handler(services: Services, contract_doc: dict[str, Any],
             attempt_id: int | None = None) -> VoiceTurnHandler:
    import_document(services.engine, contract_doc)

    async def start() -> VoiceTurnHandler:
        session = await ConversationSession.start(services, borrower_id="B001", loan_id="L001",
                                                  channel="voice", direction="outbound")
        return VoiceTurnHandler(services, session, attempt_id=attempt_id)

    return asyncio.run(start())


@pytest.mark.parametrize("placed_by_us", [True, False])
def test_dtmf_1_confirms_identity_only_on_calls_the_service_placed(
        services: Services, contract_doc: dict[str, Any], nlu_pipeline: Any,
        placed_by_us: bool) -> None:
    handler = _handler(services, contract_doc, attempt_id=1 if placed_by_us else None)

    async def call() -> tuple[list[Any], list[Any]]:
        opening = await handler.open()
        await handler.record_delivery(opening[0].turn_seq, "m1")
        return opening, await handler.handle(CallerKeyPress("1", 3.0))

    opening, reply = asyncio.run(call())
    assert opening[0].uninterruptible
    # The debt is disclosed only after a key press on a call we dialled confirmed identity.
    assert ("元" in " ".join(r.text for r in reply)) is placed_by_us
    with session_scope(services.engine) as db:
        conversation = db.get(Conversation, handler.session.conversation_id)
        assert conversation is not None
        assert bool(conversation.state.get("verified")) is placed_by_us


def test_silence_reprompts_then_says_goodbye_and_ends(
        services: Services, contract_doc: dict[str, Any], nlu_pipeline: Any) -> None:
    handler = _handler(services, contract_doc)

    async def call() -> list[list[Any]]:
        await handler.open()
        replies = [await handler.handle(CallerSilence(n, 8.0 * n))
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


def test_holding_phrase_is_an_agent_turn_checked_and_logged(
        services: Services, contract_doc: dict[str, Any], nlu_pipeline: Any) -> None:
    """Backpressure on the line is still the agent speaking: logged, gated, not an answer."""
    from sqlalchemy import select

    from agent.store.tables import Turn

    handler = _handler(services, contract_doc)

    async def call() -> list[Any]:
        await handler.open()
        return await handler.hold()

    replies = asyncio.run(call())
    assert len(replies) == 1 and replies[0].text and not replies[0].end_call
    with session_scope(services.engine) as db:
        turns = list(db.execute(select(Turn).where(
            Turn.conversation_id == handler.session.conversation_id).order_by(Turn.seq)).scalars())
    assert turns[-1].speaker == "agent" and turns[-1].act == "hold"
    assert turns[-1].compliance == []  # passed the gate
    assert not handler.ended
