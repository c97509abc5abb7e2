"""Runs one story through ConversationSession (real NLU, strategies, compliance, SQLite)."""

from __future__ import annotations

import asyncio
import re
import shutil
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from agent.bootstrap import Services, build_services
from agent.config.settings import Settings
from agent.core.inputs import Dtmf, NoInput, Text
from agent.core.money import cents, yuan_speech, yuan_text
from agent.core.positions import compute_position
from agent.importer import import_document
from agent.session import ConversationSession
from agent.store.db import make_engine
from agent.store.loans import load_loan
from agent.store.tables import Callback, ContactRestriction, Conversation, Loan, Promise
from tests.stories.fixtures import LOANS, NOW, figure, portfolio

QUESTION_END = re.compile(r"(？|\?|吗|呢)[。.!！\s]*$")
ACT_ALIASES = {"offer.promise_counter": "promise.counter"}


RESULTS: dict[str, tuple[str, bool]] = {}  # story id → (category, passed), for the summary


def summary_lines() -> list[str]:
    by: dict[str, list[bool]] = {}
    for category, ok in RESULTS.values():
        by.setdefault(category, []).append(ok)
    total = [ok for v in by.values() for ok in v]
    lines = [f"{c:14s} {sum(v):3d}/{len(v):<3d}" for c, v in sorted(by.items())]
    if total:
        lines.append(f"{'ALL':14s} {sum(total):3d}/{len(total):<3d}")
    return lines


class FrozenClock:
    def __call__(self) -> Any:
        return NOW


@dataclass
class Result:
    failures: list[str] = field(default_factory=list)
    transcript: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.failures.append(message)


class World:
    """A migrated, seeded SQLite template copied per story (fast: no migration per story)."""

    def __init__(self, root: Path, nlu: Any) -> None:
        self.root = root
        self.nlu = nlu
        self.template = root / "template.db"
        settings = Settings(data_dir=root / "template", database_url=f"sqlite:///{self.template}",
                            api_key="story-key")
        services = build_services(settings, clock=FrozenClock(), nlu=nlu)
        import_document(services.engine, portfolio())
        services.engine.dispose()
        self.count = 0

    def services(self) -> Services:
        self.count += 1
        path = self.root / f"story{self.count}.db"
        shutil.copy(self.template, path)
        settings = Settings(data_dir=self.root / "data", database_url=f"sqlite:///{path}",
                            api_key="story-key")
        settings.ensure_data_dir()
        return Services(settings=settings, engine=make_engine(settings.sqlalchemy_url),
                        api_key="story-key", clock=FrozenClock(), overrides={"nlu": self.nlu})


def _amount(spec: Any, position: Any) -> Decimal:
    if isinstance(spec, int | float):
        return cents(spec)
    return cents(figure(position, str(spec)))


def _act_matches(expected: str, acts: list[str]) -> bool:
    expected = ACT_ALIASES.get(expected, expected)
    return any(a == expected or a.startswith(expected + ".") for a in acts)


def run_story(world: World, story: dict[str, Any]) -> Result:
    result = Result()
    services = world.services()
    loan = LOANS[story.get("loan", "m1")]
    channel = story.get("channel", "chat")
    try:
        asyncio.run(_converse(services, story, loan, channel, result))
        _final(services, story, loan, result)
    finally:
        services.engine.dispose()
    return result


def _position(services: Services, loan_id: str) -> Any:
    with Session(services.engine) as db:
        loaded = load_loan(db, loan_id)
        assert loaded is not None
        return compute_position(loaded[0], loaded[1], NOW)


def _mentions(text: str, value: Decimal) -> bool:
    return yuan_text(value) in text.replace(",", "") or yuan_speech(value) in text


async def _converse(services: Services, story: dict[str, Any], loan: dict[str, Any],
                    channel: str, result: Result) -> None:
    direction = "outbound" if channel == "voice" else "inbound"
    session = await ConversationSession.start(services, borrower_id=loan["borrower_id"],
                                              loan_id=loan["id"], channel=channel,
                                              direction=direction)
    result.conversation_id = session.conversation_id  # type: ignore[attr-defined]
    opening = await session.open()
    previous = "".join(t.text for t in opening)
    result.transcript.append(f"AGENT {[t.act for t in opening]}: {previous}")
    position = _position(services, loan["id"])
    for index, turn in enumerate(story.get("turns") or [], start=1):
        if "dtmf" in turn:
            replies = await session.handle_input(Dtmf(str(turn["dtmf"])))
            said = f"[DTMF {turn['dtmf']}]"
        elif turn.get("no_input"):
            replies = await session.handle_input(NoInput(int(turn.get("count", 1))))
            said = "[no input]"
        else:
            said = str(turn.get("borrower", ""))
            replies = await session.handle_input(Text(said))
        acts = [t.act for t in replies]
        text = "".join(t.text for t in replies)
        result.transcript.append(f"BORROWER: {said}")
        result.transcript.append(f"AGENT {acts}: {text}")
        expect = turn.get("expect") or {}
        where = f"turn {index} ({said})"
        for act in expect.get("acts") or []:
            if not _act_matches(act, acts):
                result.fail(f"{where}: expected act {act}, got {acts}")
        for act in expect.get("not_acts") or []:
            if _act_matches(act, acts):
                result.fail(f"{where}: unexpected act {act} in {acts}")
        for name in expect.get("mentions") or []:
            value = _amount(name, position)
            if not _mentions(text, value):
                result.fail(f"{where}: reply does not mention {name}={yuan_text(value)}")
        for name in expect.get("not_mentions") or []:
            value = _amount(name, position)
            if _mentions(text, value):
                result.fail(f"{where}: reply mentions {name}={yuan_text(value)}")
        if "asks" in expect:
            last = replies[-1].text if replies else ""
            if bool(QUESTION_END.search(last)) != bool(expect["asks"]):
                result.fail(f"{where}: asks={expect['asks']} but last reply is {last!r}")
        if story.get("final", {}).get("no_repeats", True) and text and text == previous:
            result.fail(f"{where}: identical consecutive agent reply {text!r}")
        if text:
            previous = text


def _final(services: Services, story: dict[str, Any], loan: dict[str, Any],
           result: Result) -> None:
    final = story.get("final") or {}
    position = _position(services, loan["id"])
    cid = result.conversation_id  # type: ignore[attr-defined]
    with Session(services.engine) as db:
        conversation = db.get(Conversation, cid)
        assert conversation is not None
        promises = list(db.execute(select(Promise).where(Promise.conversation_id == cid)
                                   .order_by(Promise.id)).scalars())
        restrictions = list(db.execute(select(ContactRestriction).where(
            ContactRestriction.borrower_id == loan["borrower_id"],
            ContactRestriction.active.is_(True))).scalars())
        callbacks = list(db.execute(select(Callback).where(
            Callback.conversation_id == cid)).scalars())
        loan_row = db.get(Loan, loan["id"])
        assert loan_row is not None
        live = [p for p in promises if p.status != "cancelled"]
        if "promise" in final:
            spec = final["promise"]
            if spec in (None, "none"):
                if live:
                    result.fail(f"expected no promise, got {[(str(p.amount), str(p.due_date)) for p in live]}")
            elif not live:
                result.fail(f"expected promise {spec}, none stored")
            else:
                got = live[-1]
                if "amount" in spec and cents(got.amount) != _amount(spec["amount"], position):
                    result.fail(f"promise amount {got.amount} != {spec['amount']} "
                                f"({_amount(spec['amount'], position)})")
                if "date" in spec and got.due_date != date.fromisoformat(str(spec["date"])):
                    result.fail(f"promise date {got.due_date} != {spec['date']}")
                if "confirmed" in spec and bool(got.confirmed) != bool(spec["confirmed"]):
                    result.fail(f"promise confirmed {got.confirmed} != {spec['confirmed']}")
        if "promises_cancelled" in final:
            cancelled = sum(1 for p in promises if p.status == "cancelled")
            if cancelled != final["promises_cancelled"]:
                result.fail(f"promises cancelled {cancelled} != {final['promises_cancelled']}")
        flags = set(conversation.flags or [])
        for flag in final.get("flags") or []:
            if flag not in flags:
                result.fail(f"missing flag {flag} (flags {sorted(flags)})")
        for flag in final.get("no_flags") or []:
            if flag in flags:
                result.fail(f"unexpected flag {flag}")
        ceased = {r.channel for r in restrictions if r.kind == "cease_requested"}
        for channel in final.get("ceased") or []:
            if channel not in ceased and "all" not in ceased:
                result.fail(f"channel {channel} not ceased (ceased {sorted(ceased)})")
        for channel in final.get("not_ceased") or []:
            if channel in ceased or "all" in ceased:
                result.fail(f"channel {channel} ceased (ceased {sorted(ceased)})")
        if "paused" in final and bool(loan_row.paused_reason) != bool(final["paused"]):
            result.fail(f"paused={loan_row.paused_reason!r}, expected {final['paused']}")
        if "wrong_number" in final:
            wrong = any(r.kind == "wrong_number" for r in restrictions)
            if wrong != bool(final["wrong_number"]):
                result.fail(f"wrong_number={wrong}, expected {final['wrong_number']}")
        if "callback" in final:
            spec = final["callback"]
            if spec in (None, "none"):
                if callbacks:
                    result.fail("unexpected callback")
            elif not callbacks:
                result.fail(f"expected callback {spec}, none stored")
            else:
                cb = callbacks[-1]
                if "date" in spec and cb.local_date != date.fromisoformat(str(spec["date"])):
                    result.fail(f"callback date {cb.local_date} != {spec['date']}")
                if "part" in spec and cb.part != spec["part"]:
                    result.fail(f"callback part {cb.part} != {spec['part']}")
        if "handoff" in final and ("handoff" in flags) != bool(final["handoff"]):
            result.fail(f"handoff={'handoff' in flags}, expected {final['handoff']}")
        if "ended" in final and (conversation.ended_at is not None) != bool(final["ended"]):
            result.fail(f"ended={conversation.ended_at is not None}, expected {final['ended']}")
