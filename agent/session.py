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
import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import Session

from agent.bootstrap import Services
from agent.core.commands import Affirm, Clarify, Command, Deny, SetSlot
from agent.core.engine import (
    ENDED,
    NEGOTIATION,
    Decision,
    DialogueState,
    Engine,
    LoanFacts,
    PaymentFact,
    new_state,
)
from agent.core.inputs import Dtmf, NoInput, Text, TurnInput
from agent.core.labels import Intent, NluResult, Willingness
from agent.core.money import cents, yuan_speech, yuan_text
from agent.core.positions import LoanPosition, compute_position
from agent.policy.content import UtteranceContext, check_utterance, safe_fallback
from agent.store.conversations import EventLog, add_flag, add_turn, apply_effects, next_seq
from agent.store.db import session_scope
from agent.store.loans import load_loan
from agent.store.tables import Borrower, Conversation, Loan, Turn
from agent.strategy import Strategy, _Values

log = logging.getLogger("huikuan.session")
LOAN_CACHE_S = 5.0

CHANNEL_NAMES = {"app": "App内“还款”入口", "alipay": "支付宝", "wechat": "微信",
                 "bank_card": "绑定银行卡自动扣款", "bank_transfer": "对公账户转账",
                 "voice": "电话", "chat": "在线消息", "sms": "短信", "all": "任何渠道"}


def _plain(value: Decimal) -> str:
    """A rate without trailing zeros (24, 0.05), at most two decimals."""
    text = f"{cents(value).normalize():f}"
    return text


def template_values(facts: LoanFacts, act_values: dict[str, Any], channel: str,
                    settings: Any) -> dict[str, Any]:
    """Template values: every yuan from a position field, rounded once (agent.core.money);
    the voice channel says amounts in Chinese (一千一百一十元五角三分)."""
    money = yuan_speech if channel == "voice" else yuan_text
    channels = "、".join(CHANNEL_NAMES.get(c, c) for c in settings.payment_channels)
    values: dict[str, Any] = {
        "lender": settings.lender_name, "hotline": settings.complaint_hotline,
        "masked_name": facts.masked_name, "name": facts.borrower_name,
        "dpd": facts.dpd,
        **{name: money(getattr(facts, name)) for name in MONEY_FIELDS},
        "next_due_date": _cn_date(facts.next_due_date),
        "oldest_due_date": _cn_date(facts.oldest_due_date), "channels": channels,
        "annual_rate_pct": _plain(facts.annual_rate * 100),
        "penalty_rate_pct": _plain(facts.penalty_rate_daily * 100),
        "penalty_rate_wan": _plain(facts.penalty_rate_daily * 10000),
    }
    for key, value in act_values.items():
        values[key] = money(value) if isinstance(value, Decimal) else value
    if "asked_channel" in act_values:
        values["channel_name"] = CHANNEL_NAMES.get(act_values["asked_channel"], "该渠道")
    if "ceased_channel" in act_values:
        values["channel_name"] = "和".join(
            CHANNEL_NAMES.get(c, "该渠道") for c in str(act_values["ceased_channel"]).split("+"))
    return values


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


MONEY_FIELDS = ("total_due", "penalty", "overdue", "outstanding", "settle", "next_due_amount")
REPEAT_PREFIX = "再跟您说明一下："
_SPOKEN_UNIT = re.compile(r"(元整|[角分]|元)元")


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
        self._speech = False

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
                                arm=services.strategies.arm_of(strategy),
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

    async def handle_input(self, turn: TurnInput) -> list[AgentTurn]:
        """The typed entry point: Text, Dtmf, NoInput."""
        return await self._run(lambda: self._handle_sync(turn))

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
        made = [p for p in payments if p.paid_at <= now]
        return LoanFacts(
            borrower_name=borrower.name, dpd=position.dpd, bucket=position.bucket,
            overdue=position.overdue_amount, penalty=position.penalty,
            total_due=position.total_due, outstanding=position.outstanding_principal,
            settle=position.early_settlement_amount, next_due_date=position.next_due_date,
            next_due_amount=position.next_due_amount,
            oldest_due_date=overdue[0].due_date if overdue else None,
            annual_rate=terms.annual_rate, penalty_rate_daily=terms.penalty_rate_daily,
            today=today, paused=paused,
            payments=tuple(PaymentFact(p.paid_at.astimezone(zone).date(), p.amount)
                           for p in made),
        )

    def _values(self, facts: LoanFacts, act_values: dict[str, Any],
                channel: str = "chat") -> dict[str, Any]:
        return template_values(facts, act_values, channel, self.services.settings)

    def _pick(self, strategy: Strategy, act: str, values: dict[str, Any],
              avoid: set[str]) -> str:
        """One variant, never the text the agent just said (cannot-handle repair rule)."""
        variants = [v.format_map(_Values(values)) for v in strategy.choices(act, values)]
        if self._speech:  # the speech form already says 元 (三千元整): drop the template's
            variants = [_SPOKEN_UNIT.sub(r"\1", v) for v in variants]
        fresh = [v for v in variants if v not in avoid]
        if fresh:
            return self._rng.choice(fresh)
        return REPEAT_PREFIX + self._rng.choice(variants)

    def _word(self, db: Session, conversation: Conversation, state: DialogueState,
              facts: LoanFacts, strategy: Strategy, decision: Decision, seq: int,
              now: datetime, log: EventLog | None = None) -> list[AgentTurn]:
        """Render, check and store each agent act; blocked wording is replaced and flagged."""
        profile = self.services.policy
        turns: list[AgentTurn] = []
        self._speech = state.channel == "voice"
        avoid = set(state.last_reply)
        said: list[str] = []
        for index, (act, act_values) in enumerate(decision.acts):
            values = self._values(facts, act_values, state.channel)
            text = self._pick(strategy, act, values, avoid | set(said))
            ctx = UtteranceContext(identity_verified=state.verified,
                                   addressee="borrower" if state.verified else "unknown",
                                   is_opening=act.startswith("opening"), channel=state.channel)
            text, hits = self._guard(text, profile, ctx, self.services.compliance_classifier)
            if hits:
                add_flag(db, conversation, "compliance_blocked",
                         ", ".join(h["rule"] for h in hits), now)
            said.append(text)
            is_last = index == len(decision.acts) - 1
            end_call = is_last and decision.end_reason is not None
            masked = self._mask(text)
            add_turn(db, conversation.id, seq, "agent", masked, now, act=act[:40],
                     compliance=hits,
                     meta={"uninterruptible": act.startswith("opening"),
                           **({"variant": act_values["variant"]}
                              if "variant" in act_values else {})})
            if log is not None:
                log.append("utterance_sent", {"seq": seq, "act": act, "text": masked,
                                              "compliance": [h["rule"] for h in hits]})
            turns.append(AgentTurn(text=text, seq=seq, act=act,
                                   uninterruptible=act.startswith("opening"), end_call=end_call,
                                   end_reason=decision.end_reason if end_call else None))
            seq += 1
        if said:
            state.last_reply = said
        if decision.end_reason is not None and not turns:
            turns.append(AgentTurn(text="", seq=seq, act="end", end_call=True,
                                   end_reason=decision.end_reason))
        return turns

    @staticmethod
    def _guard(text: str, profile: Any, ctx: UtteranceContext, classifier: Any = None
               ) -> tuple[str, list[dict[str, Any]]]:
        """The text to send and the rule hits: blocked wording becomes the safe fallback.

        Fails closed: a rule that raises counts as a block.
        """
        try:
            verdict = check_utterance(text, profile, ctx, classifier)
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
            self._quality_check(conversation)

    def _quality_check(self, conversation: Conversation) -> None:
        """Every conversation the product holds is scored when it ends (the same scorecard as
        /qa/transcripts, rules only: the learned model already judged nothing it said
        differently at send time, and the end of a call must stay fast)."""
        from sqlalchemy.orm import object_session

        from agent.policy.qa import QaContext, TranscriptTurn, score_transcript

        db = object_session(conversation)
        if db is None:
            return
        rows = db.execute(select(Turn.speaker, Turn.text).where(
            Turn.conversation_id == conversation.id).order_by(Turn.seq)).all()
        turns = [TranscriptTurn(speaker, text) for speaker, text in rows
                 if speaker in ("agent", "borrower")]
        if not any(t.speaker == "agent" for t in turns):
            return
        card = score_transcript(turns, self.services.policy,
                                QaContext(channel=conversation.channel, agent_is_ai=True))
        conversation.qa_score = card.score
        conversation.qa = card.to_dict()

    def _engine(self, state: DialogueState, facts: LoanFacts, strategy: Strategy) -> Engine:
        return Engine(state, facts, strategy, strategy.flow_book,
                      self.services.settings.payment_channels)

    def _open_sync(self) -> list[AgentTurn]:
        now = self.services.clock()
        with session_scope(self.services.engine) as db:
            conversation, state, facts, strategy, _ = self._context(db)
            conversation.segment = strategy.segment_for(facts.bucket, state.ability).id
            decision = self._engine(state, facts, strategy).opening()
            log = EventLog(db, conversation.id, now)
            log.append("conversation_opened", {"channel": state.channel, "kind": state.kind})
            turns = self._word(db, conversation, state, facts, strategy, decision,
                               next_seq(db, conversation.id), now, log)
            self._finish(conversation, state, now, None)
            return turns

    def _say_sync(self, acts: list[str], end_reason: str | None = None) -> list[AgentTurn]:
        now = self.services.clock()
        with session_scope(self.services.engine) as db:
            conversation, state, facts, strategy, _ = self._context(db)
            decision = Decision(acts=[(act, {}) for act in acts], end_reason=end_reason)
            turns = self._word(db, conversation, state, facts, strategy, decision,
                               next_seq(db, conversation.id), now,
                               EventLog(db, conversation.id, now))
            self._finish(conversation, state, now, end_reason)
            return turns

    def _understand(self, text: str, state: DialogueState, zone: ZoneInfo) -> tuple[
            list[Command], NluResult]:
        """Text → commands (nlp.commands over the NLU; a test may inject its own)."""
        understander = self.services.overrides.get("understander")
        if understander is None:
            from nlp.commands import understand as understander
        ref = self.services.clock().astimezone(zone)
        in_negotiation = any(f["flow"] in NEGOTIATION for f in state.stack) or bool(
            state.expect and state.expect.startswith(("promise.", "offer.")))
        result = understander(text, self.services.nlu, ref, expect=state.expect,
                              channel=state.channel, verified=state.verified,
                              in_negotiation=in_negotiation)
        whole = result.whole or NluResult(intent=Intent.OTHER, intent_confidence=0.0,
                                          willingness=Willingness.NONE,
                                          willingness_confidence=0.0)
        return list(result.commands), whole

    @staticmethod
    def _dtmf_commands(digit: str) -> list[Command]:
        if digit == "1":
            return [SetSlot("identity", "self", clause="DTMF 1"), Affirm(clause="DTMF 1")]
        if digit == "2":
            return [Deny(clause="DTMF 2")]
        return [Clarify("dtmf", clause=f"DTMF {digit}")]

    def _handle_sync(self, turn: TurnInput) -> list[AgentTurn]:
        """load → decide → word + check → persist, in one transaction."""
        now = self.services.clock()
        text = turn.text if isinstance(turn, Text) else (
            f"[按键{turn.digit}]" if isinstance(turn, Dtmf) else "")
        meta = dict(turn.meta) if isinstance(turn, Text) else {}
        try:
            with session_scope(self.services.engine) as db:
                conversation, state, facts, strategy, borrower = self._context(db)
                if state.phase == ENDED:
                    return []
                engine = self._engine(state, facts, strategy)
                log = EventLog(db, conversation.id, now)
                seq = next_seq(db, conversation.id)
                if isinstance(turn, NoInput):
                    log.append("no_input", {"count": turn.count})
                    decision = engine.no_input(turn.count)
                    turns = self._word(db, conversation, state, facts, strategy, decision, seq,
                                       now, log)
                    self._finish(conversation, state, now, decision.end_reason)
                    return turns
                if isinstance(turn, Dtmf):
                    commands = self._dtmf_commands(turn.digit)
                    nlu = NluResult(intent={"1": Intent.CONFIRM_IDENTITY, "2": Intent.DENY}.get(
                        turn.digit, Intent.OTHER), intent_confidence=1.0,
                        willingness=Willingness.NONE, willingness_confidence=1.0,
                        redacted_text=f"[DTMF {turn.digit}]", model="dtmf")
                else:
                    commands, nlu = self._understand(text, state, ZoneInfo(borrower.timezone))
                masked = nlu.redacted_text or self._mask(text)
                add_turn(db, conversation.id, seq, "borrower", masked, now,
                         intent=nlu.intent.value,
                         intent_confidence=round(nlu.intent_confidence, 4),
                         willingness=nlu.willingness.value,
                         entities=[e.as_dict() for e in nlu.entities],
                         meta=meta | ({"truncated": True} if nlu.truncated else {}))
                log.append("message_received", {"seq": seq, "text": masked,
                                                "input": type(turn).__name__})
                log.append("commands", {"commands": [self._command_dict(c) for c in commands]})
                decision = engine.step(commands, nlu.willingness.value)
                if decision.slots_set:
                    log.append("slots_set", {k: v if not isinstance(v, dict) else
                                             {**v, "phrase": self._mask(str(v.get("phrase", "")))}
                                             for k, v in decision.slots_set.items()})
                apply_effects(db, conversation, decision.effects, now, borrower.timezone)
                if decision.effects:
                    log.append("effects_applied", {"effects": [e.to_dict()
                                                               for e in decision.effects]})
                    self._loan_cache = None  # a pause or promise changes what comes next
                conversation.segment = strategy.segment_for(
                    facts.bucket, state.ability, state.willingness or "unknown").id
                turns = self._word(db, conversation, state, facts, strategy, decision, seq + 1,
                                   now, log)
                self._finish(conversation, state, now, decision.end_reason)
                return turns
        except Exception:
            log_ = logging.getLogger("huikuan.session")
            log_.exception("turn failed in conversation %s", self.conversation_id)
            return self._fallback_sync(text, meta, now)

    def _command_dict(self, command: Command) -> dict[str, Any]:
        data = command.to_dict()
        data["clause"] = self._mask(str(data.get("clause", "")))
        if isinstance(data.get("value"), dict) and "phrase" in data["value"]:
            data["value"] = {**data["value"], "phrase": self._mask(data["value"]["phrase"])}
        return data

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

