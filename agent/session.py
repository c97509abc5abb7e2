"""One conversation as a use case: understand, decide, word, check, persist — for chat and voice.

Each borrower turn runs as one unit of work in a worker thread (the NLU model and the database
are blocking): classify, compute the loan's position, step the dialogue machine, render the
strategy's wording, pass every agent utterance through the compliance engine, and write the
turns, effects and new state in one transaction. If any step fails, the borrower's words are
still stored and the agent answers with a safe fallback: a transcript is never lost.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import Session

from agent.bootstrap import Services
from agent.core.dialogue import (
    ENDED,
    Decision,
    DialogueMachine,
    DialogueState,
    LoanFacts,
    RecentPayment,
    new_state,
)
from agent.core.labels import Intent, NluResult, Willingness
from agent.core.positions import LoanPosition, compute_position
from agent.policy.content import UtteranceContext, check_utterance, safe_fallback
from agent.store.conversations import add_flag, add_turn, apply_effects, next_seq
from agent.store.db import session_scope
from agent.store.loans import load_loan
from agent.store.tables import Borrower, Conversation, Loan, Turn
from agent.strategy import Strategy

log = logging.getLogger("huikuan.session")
LOAN_CACHE_S = 5.0

CHANNEL_NAMES = {"app": "App内“还款”入口", "alipay": "支付宝", "wechat": "微信",
                 "bank_card": "绑定银行卡自动扣款", "bank_transfer": "对公账户转账",
                 "voice": "电话", "chat": "在线消息", "sms": "短信", "all": "任何渠道"}


class ConversationNotFound(LookupError):
    pass


@dataclass
class AgentTurn:
    text: str
    seq: int
    act: str
    uninterruptible: bool = False
    end_call: bool = False
    end_reason: str | None = None


def _money(value: Decimal) -> str:
    text = f"{value:.2f}"
    return text[:-3] if text.endswith(".00") else text


def _cn_date(day: Any) -> str:
    return f"{day.month}月{day.day}日" if day else "—"


class ConversationSession:
    """The agent side of one conversation; turns are serialised by a per-conversation lock."""

    def __init__(self, services: Services, conversation_id: str) -> None:
        self.services = services
        self.conversation_id = conversation_id
        self._lock = asyncio.Lock()
        self.ended = False
        self._rng = random.Random(conversation_id)
        self._loan_cache: tuple[float, tuple[Any, list[Any], bool] | None] | None = None

    # -- life cycle ----------------------------------------------------------------------------
    @classmethod
    async def start(cls, services: Services, *, borrower_id: str, loan_id: str | None,
                    channel: str, direction: str = "inbound", call_id: str | None = None,
                    conversation_id: str | None = None) -> ConversationSession:
        conversation_id = conversation_id or uuid.uuid4().hex
        await asyncio.to_thread(cls._create, services, conversation_id, borrower_id, loan_id,
                                channel, direction, call_id)
        return cls(services, conversation_id)

    @staticmethod
    def _create(services: Services, conversation_id: str, borrower_id: str, loan_id: str | None,
                channel: str, direction: str, call_id: str | None) -> None:
        with session_scope(services.engine) as db:
            borrower = db.get(Borrower, borrower_id)
            if borrower is None:
                raise ConversationNotFound(f"unknown borrower {borrower_id!r}")
            if loan_id is not None:
                loan = db.get(Loan, loan_id)
                if loan is None or loan.borrower_id != borrower_id:
                    raise ConversationNotFound(f"loan {loan_id!r} is not borrower {borrower_id}'s")
            strategy = services.strategies.for_borrower(borrower_id)
            kind = "outbound" if direction == "outbound" else "inbound"
            state = new_state(kind, channel, ability=borrower.ability)
            db.add(Conversation(id=conversation_id, channel=channel, direction=direction,
                                loan_id=loan_id, borrower_id=borrower_id, strategy=strategy.ref,
                                state=state.to_dict(), started_at=services.clock(),
                                call_id=call_id))

    @classmethod
    async def resume(cls, services: Services, conversation_id: str) -> ConversationSession:
        def load() -> bool:
            with Session(services.engine) as db:
                conversation = db.get(Conversation, conversation_id)
                if conversation is None:
                    raise ConversationNotFound(conversation_id)
                return conversation.ended_at is not None

        ended = await asyncio.to_thread(load)
        session = cls(services, conversation_id)
        session.ended = ended
        return session

    async def open(self) -> list[AgentTurn]:
        """The agent speaks first: who it is (an AI of the lender) and, outbound, who it wants."""
        return await self._run(self._open_sync)

    async def resume_greeting(self) -> list[AgentTurn]:
        return await self._run(lambda: self._say_sync(["resume"]))

    async def handle(self, text: str, meta: dict[str, Any] | None = None) -> list[AgentTurn]:
        return await self._run(lambda: self._handle_sync(text, meta or {}))

    async def say(self, acts: list[str], end_reason: str | None = None) -> list[AgentTurn]:
        """Agent-initiated lines (voice reprompts, silence goodbyes)."""
        return await self._run(lambda: self._say_sync(acts, end_reason))

    async def close(self, reason: str, outcome: str | None = None) -> None:
        async with self._lock:
            await asyncio.to_thread(self._close_sync, reason, outcome)
            self.ended = True

    async def record_delivery(self, seq: int, mark: str) -> None:
        await asyncio.to_thread(self._update_turn_meta, seq, {"delivered_mark": mark,
                                                              "delivered_at": self._now_iso()})

    async def record_interruption(self, seq: int, played_ms: int) -> None:
        await asyncio.to_thread(self._update_turn_meta, seq, {"interrupted": True,
                                                              "played_ms": played_ms})

    async def set_recordings(self, recordings: dict[str, Any]) -> None:
        def write() -> None:
            with session_scope(self.services.engine) as db:
                conversation = db.get(Conversation, self.conversation_id)
                if conversation is not None:
                    conversation.recordings = {**(conversation.recordings or {}), **recordings}
        await asyncio.to_thread(write)

    async def _run(self, fn: Any) -> list[AgentTurn]:
        async with self._lock:
            if self.ended:
                return []
            turns: list[AgentTurn] = await asyncio.to_thread(fn)
            if any(t.end_call for t in turns):
                self.ended = True
            return turns

    # -- work done in a thread -------------------------------------------------------------------
    def _now_iso(self) -> str:
        return self.services.clock().isoformat()

    def _context(self, db: Session) -> tuple[Conversation, DialogueState, LoanFacts, Strategy,
                                             Borrower]:
        conversation = db.get(Conversation, self.conversation_id, with_for_update=True)
        if conversation is None:
            raise ConversationNotFound(self.conversation_id)
        borrower = db.get(Borrower, conversation.borrower_id)
        assert borrower is not None
        state = DialogueState.from_dict(conversation.state)
        strategy = (self.services.strategies.get(conversation.strategy or "")
                    or self.services.strategies.for_borrower(borrower.id))
        facts = self._facts(db, conversation, borrower)
        return conversation, state, facts, strategy, borrower

    def _loan_record(self, db: Session, loan_id: str) -> tuple[Any, list[Any], bool] | None:
        """Terms, payments and pause flag, cached briefly: a chat turn rarely follows a payment
        by seconds, and re-reading the schedule every turn dominated the turn's cost."""
        now = time.monotonic()
        if self._loan_cache is not None and now - self._loan_cache[0] < LOAN_CACHE_S:
            return self._loan_cache[1]
        loaded = load_loan(db, loan_id)
        record = None
        if loaded is not None:
            loan = db.get(Loan, loan_id)
            record = (loaded[0], loaded[1], bool(loan and loan.paused_reason))
        self._loan_cache = (now, record)
        return record

    def _facts(self, db: Session, conversation: Conversation, borrower: Borrower) -> LoanFacts:
        now = self.services.clock()
        zone = ZoneInfo(borrower.timezone)
        today = now.astimezone(zone).date()
        zero = Decimal(0)
        record = self._loan_record(db, conversation.loan_id) if conversation.loan_id else None
        if record is None:
            return LoanFacts(borrower_name=borrower.name, dpd=0, bucket="current", overdue=zero,
                             penalty=zero, total_due=zero, outstanding=zero, settle=zero,
                             next_due_date=None, next_due_amount=zero, oldest_due_date=None,
                             annual_rate=zero, penalty_rate_daily=zero, today=today)
        terms, payments, paused = record
        position: LoanPosition = compute_position(terms, payments, now)
        overdue = [i for i in position.installments if i.status == "overdue"]
        recent = [p for p in payments if now - timedelta(days=14) <= p.paid_at <= now]
        return LoanFacts(
            borrower_name=borrower.name, dpd=position.dpd, bucket=position.bucket,
            overdue=position.overdue_amount, penalty=position.penalty,
            total_due=position.total_due, outstanding=position.outstanding_principal,
            settle=position.early_settlement_amount, next_due_date=position.next_due_date,
            next_due_amount=position.next_due_amount,
            oldest_due_date=overdue[0].due_date if overdue else None,
            annual_rate=terms.annual_rate, penalty_rate_daily=terms.penalty_rate_daily,
            today=today, paused=paused,
            recent_payments=tuple(RecentPayment(p.paid_at.astimezone(zone).date(), p.amount,
                                                None) for p in recent),
        )

    def _values(self, facts: LoanFacts, act_values: dict[str, Any]) -> dict[str, Any]:
        settings = self.services.settings
        channels = "、".join(CHANNEL_NAMES.get(c, c) for c in settings.payment_channels)
        values: dict[str, Any] = {
            "lender": settings.lender_name, "hotline": settings.complaint_hotline,
            "masked_name": facts.masked_name, "name": facts.borrower_name,
            "dpd": facts.dpd, "total_due": _money(facts.total_due),
            "penalty": _money(facts.penalty), "overdue": _money(facts.overdue),
            "outstanding": _money(facts.outstanding), "settle": _money(facts.settle),
            "next_due_date": _cn_date(facts.next_due_date),
            "next_due_amount": _money(facts.next_due_amount),
            "oldest_due_date": _cn_date(facts.oldest_due_date), "channels": channels,
            "annual_rate_pct": f"{facts.annual_rate * 100:g}",
            "penalty_rate_pct": f"{facts.penalty_rate_daily * 100:g}",
        }
        for key, value in act_values.items():
            values[key] = _money(value) if isinstance(value, Decimal) else value
        if "asked_channel" in act_values:
            values["channel_name"] = CHANNEL_NAMES.get(act_values["asked_channel"], "该渠道")
        if "ceased_channel" in act_values:
            values["channel_name"] = CHANNEL_NAMES.get(act_values["ceased_channel"], "该渠道")
        return values

    def _word(self, db: Session, conversation: Conversation, state: DialogueState,
              facts: LoanFacts, strategy: Strategy, decision: Decision, seq: int,
              now: datetime) -> list[AgentTurn]:
        """Render, check and store each agent act; blocked wording is replaced and flagged."""
        profile = self.services.policy
        turns: list[AgentTurn] = []
        for index, (act, act_values) in enumerate(decision.acts):
            text = strategy.render(act, self._values(facts, act_values), self._rng)
            ctx = UtteranceContext(identity_verified=state.verified,
                                   addressee="borrower" if state.verified else "unknown",
                                   is_opening=act.startswith("opening"), channel=state.channel)
            text, hits = self._guard(text, profile, ctx)
            if hits:
                add_flag(db, conversation, "compliance_blocked",
                         ", ".join(h["rule"] for h in hits), now)
            is_last = index == len(decision.acts) - 1
            end_call = is_last and decision.end_reason is not None
            add_turn(db, conversation.id, seq, "agent", self._mask(text), now, act=act,
                     compliance=hits,
                     meta={"uninterruptible": act.startswith("opening")})
            turns.append(AgentTurn(text=text, seq=seq, act=act,
                                   uninterruptible=act.startswith("opening"), end_call=end_call,
                                   end_reason=decision.end_reason if end_call else None))
            seq += 1
        if decision.end_reason is not None and not turns:
            turns.append(AgentTurn(text="", seq=seq, act="end", end_call=True,
                                   end_reason=decision.end_reason))
        return turns

    @staticmethod
    def _guard(text: str, profile: Any, ctx: UtteranceContext) -> tuple[str, list[dict[str, Any]]]:
        """The text to send and the rule hits: blocked wording becomes the safe fallback.

        Fails closed: a rule that raises counts as a block.
        """
        try:
            verdict = check_utterance(text, profile, ctx)
        except Exception:
            log.exception("compliance check failed")
            return safe_fallback("engine_error", profile, ctx), [
                {"rule": "engine_error", "message": "check failed", "action": "blocked"}]
        if verdict.allowed:
            return text, []
        hits = [{**v.to_dict(), "action": "blocked"} for v in verdict.violations]
        return safe_fallback(verdict.rules[0], profile, ctx), hits

    def _mask(self, text: str) -> str:
        from nlp.masking import mask_sensitive

        return mask_sensitive(text)

    def _finish(self, conversation: Conversation, state: DialogueState, now: datetime,
                reason: str | None, outcome: str | None = None) -> None:
        conversation.state = state.to_dict()
        conversation.willingness = state.willingness
        if reason is not None or state.phase == ENDED:
            state.phase = ENDED
            conversation.state = state.to_dict()
            conversation.ended_at = now
            conversation.outcome = outcome or state.final_outcome()
            conversation.state = {**conversation.state, "end_reason": reason}

    def _open_sync(self) -> list[AgentTurn]:
        now = self.services.clock()
        with session_scope(self.services.engine) as db:
            conversation, state, facts, strategy, _ = self._context(db)
            conversation.segment = strategy.segment_for(facts.bucket, state.ability).id
            decision = DialogueMachine(state, facts, strategy,
                                       self.services.settings.payment_channels).opening()
            turns = self._word(db, conversation, state, facts, strategy, decision,
                               next_seq(db, conversation.id), now)
            self._finish(conversation, state, now, None)
            return turns

    def _say_sync(self, acts: list[str], end_reason: str | None = None) -> list[AgentTurn]:
        now = self.services.clock()
        with session_scope(self.services.engine) as db:
            conversation, state, facts, strategy, _ = self._context(db)
            decision = Decision(acts=[(act, {}) for act in acts], end_reason=end_reason)
            turns = self._word(db, conversation, state, facts, strategy, decision,
                               next_seq(db, conversation.id), now)
            self._finish(conversation, state, now, end_reason)
            return turns

    def _classify(self, text: str, meta: dict[str, Any], facts: LoanFacts,
                  state: DialogueState, zone: ZoneInfo) -> NluResult:
        dtmf = meta.get("dtmf")
        if dtmf:
            intent = {"1": Intent.CONFIRM_IDENTITY, "2": Intent.DENY}.get(str(dtmf), Intent.OTHER)
            return NluResult(intent=intent, intent_confidence=1.0, willingness=Willingness.NONE,
                             willingness_confidence=1.0, redacted_text=f"[DTMF {dtmf}]",
                             model="dtmf")
        ref = self.services.clock().astimezone(zone)
        return self.services.nlu.parse(text, ref=ref)

    def _handle_sync(self, text: str, meta: dict[str, Any]) -> list[AgentTurn]:
        now = self.services.clock()
        try:
            with session_scope(self.services.engine) as db:
                conversation, state, facts, strategy, borrower = self._context(db)
                if state.phase == ENDED:
                    return []
                nlu = self._classify(text, meta, facts, state, ZoneInfo(borrower.timezone))
                seq = next_seq(db, conversation.id)
                add_turn(db, conversation.id, seq, "borrower", nlu.redacted_text or
                         self._mask(text), now, intent=nlu.intent.value,
                         intent_confidence=round(nlu.intent_confidence, 4),
                         willingness=nlu.willingness.value,
                         entities=[e.as_dict() for e in nlu.entities],
                         meta={k: v for k, v in meta.items() if k != "dtmf"} |
                         ({"truncated": True} if nlu.truncated else {}))
                decision = DialogueMachine(state, facts, strategy,
                                       self.services.settings.payment_channels).step(nlu, text)
                apply_effects(db, conversation, decision.effects, now)
                if decision.effects:
                    self._loan_cache = None  # a pause or promise changes what comes next
                conversation.segment = strategy.segment_for(
                    facts.bucket, state.ability, state.willingness or "unknown").id
                turns = self._word(db, conversation, state, facts, strategy, decision, seq + 1,
                                   now)
                self._finish(conversation, state, now, decision.end_reason)
                return turns
        except Exception:
            log.exception("turn failed in conversation %s", self.conversation_id)
            return self._fallback_sync(text, meta, now)

    def _fallback_sync(self, text: str, meta: dict[str, Any], now: datetime) -> list[AgentTurn]:
        """Keep the borrower's words and answer safely when the normal path failed."""
        apology = "抱歉，系统繁忙，您的消息已记录。请稍后再试，或通过App联系人工客服。"
        with session_scope(self.services.engine) as db:
            conversation = db.get(Conversation, self.conversation_id)
            if conversation is None:
                return []
            seq = next_seq(db, conversation.id)
            add_turn(db, conversation.id, seq, "borrower", self._mask(text), now,
                     meta={**{k: v for k, v in meta.items() if k != "dtmf"}, "error": True})
            add_turn(db, conversation.id, seq + 1, "agent", apology, now, act="error_fallback")
            add_flag(db, conversation, "system_error", "turn processing failed", now)
        return [AgentTurn(text=apology, seq=seq + 1, act="error_fallback")]

    def _close_sync(self, reason: str, outcome: str | None) -> None:
        now = self.services.clock()
        with session_scope(self.services.engine) as db:
            conversation = db.get(Conversation, self.conversation_id)
            if conversation is None or conversation.ended_at is not None:
                return
            state = DialogueState.from_dict(conversation.state)
            self._finish(conversation, state, now, reason, outcome)

    def _update_turn_meta(self, seq: int, values: dict[str, Any]) -> None:
        with session_scope(self.services.engine) as db:
            turn = db.execute(select(Turn).where(Turn.conversation_id == self.conversation_id,
                                                 Turn.seq == seq)).scalar_one_or_none()
            if turn is not None:
                turn.meta = {**(turn.meta or {}), **values}

