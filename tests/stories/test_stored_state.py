"""What a chat leaves in the store: the event log, masked notes, the contact plan."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import Session

from agent.contacts import contact_plan
from agent.core.inputs import Dtmf, NoInput, Text
from agent.session import ConversationSession
from agent.store.conversations import conversation_detail
from agent.store.tables import Conversation, ConversationEvent, Flag
from tests.stories.fixtures import LOANS, NOW
from tests.stories.runner import World

pytestmark = [pytest.mark.db, pytest.mark.nlu]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, nlu_pipeline: Any) -> World:
    return World(tmp_path_factory.mktemp("stored"), nlu_pipeline)


def _chat(services: Any, loan_key: str, *messages: str) -> str:
    loan = LOANS[loan_key]

    async def run() -> str:
        session = await ConversationSession.start(services, borrower_id=loan["borrower_id"],
                                                  loan_id=loan["id"], channel="chat")
        await session.open()
        for message in messages:
            await session.handle_input(Text(message))
        return session.conversation_id

    return asyncio.run(run())


def test_current_loan_after_a_chat_is_not_reported_paid(world: World) -> None:
    services = world.services()
    _chat(services, "current", "我逾期了吗")
    with Session(services.engine) as db:
        rows = contact_plan(db, services.strategies, services.policy, NOW, "chat")
    row = next(r for r in rows if r["loan_id"] == LOANS["current"]["id"])
    assert row["reason"] != "paid"


def test_event_log_is_appended_and_masked_and_state_is_its_cache(world: World) -> None:
    services = world.services()
    cid = _chat(services, "m1", "这笔不是我借的 我身份证13010519900307123X被人冒用了",
                "我下周一还1157.48")
    with Session(services.engine) as db:
        events = list(db.execute(select(ConversationEvent).where(
            ConversationEvent.conversation_id == cid).order_by(ConversationEvent.seq)).scalars())
        kinds = [e.kind for e in events]
        assert kinds[0] == "conversation_opened"
        assert {"message_received", "commands", "utterance_sent"} <= set(kinds)
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert [e.data for e in events if "13010519900307123X" in str(e.data)] == []
        notes = [f.note for f in db.execute(select(Flag).where(Flag.conversation_id == cid))
                 .scalars()]
        assert notes and all("13010519900307123X" not in n for n in notes)
        conversation = db.get(Conversation, cid)
        assert conversation is not None and conversation.state["flags"]
        detail = conversation_detail(db, conversation)
        assert all("13010519900307123X" not in f["note"] for f in detail["flag_details"])


def test_typed_phone_inputs_reprompt_and_confirm_identity(world: World) -> None:
    """No-input and a key press arrive as types, never as text the engine parses back."""
    services = world.services()
    loan = LOANS["m1"]

    async def run() -> tuple[list[str], list[str]]:
        session = await ConversationSession.start(services, borrower_id=loan["borrower_id"],
                                                  loan_id=loan["id"], channel="voice",
                                                  direction="outbound")
        await session.open()
        silence = await session.handle_input(NoInput(1))
        pressed = await session.handle_input(Dtmf("1"))
        return [t.act for t in silence], [t.act for t in pressed]

    silence, pressed = asyncio.run(run())
    assert silence == ["reprompt"] and pressed == ["disclose.debt"]
