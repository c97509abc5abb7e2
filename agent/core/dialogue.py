"""The dialogue state machine: what the agent does next, given what the borrower said.

Pure and synchronous: no I/O, no wording. ``step`` takes the conversation state, one NLU result
and the loan facts, and returns the acts to word (rendered later from the strategy's templates)
plus the effects to persist (promises, flags, contact restrictions, callbacks, hand-offs).
States are explicit: ``phase`` is where the conversation is, ``pending`` what the agent is
waiting for. Every transition is a line in ``_HANDLERS`` or a pending-slot handler below.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Protocol

from agent.core.labels import Intent, NluResult

# Phases.
VERIFY = "verify"
MAIN = "main"
ENDED = "ended"

# Outcomes and their rank: when several happen, the strongest one describes the conversation.
OUTCOME_RANK = {
    "wrong_party": 10, "dispute": 9, "cease": 8, "paid": 7, "ptp": 6, "hardship": 5,
    "handoff": 4, "callback": 3, "refused": 2, "abuse": 2, "unverified": 1, "info": 1,
    "no_response": 0,
}

_FULL_AMOUNT = re.compile(r"全部|全额|还清|结清|一次性|所有的?钱|都还")
_HALF_AMOUNT = re.compile(r"一半|半数")
_NOW = re.compile(r"马上|现在|立刻|立即|这就|今天|今儿|今晚")
_COUNT = re.compile(r"分\s*([0-9]{1,2}|[一二两三四五六七八九十]{1,3})\s*(?:期|次|个月|月)")
_BARE_NUMBER = re.compile(r"\D{0,3}?(\d{1,7}(?:\.\d{1,2})?)\D{0,4}")
_ALL_CHANNELS = re.compile(r"所有|任何|全部|都别|都不要|一律|永远")
_VULNERABLE = re.compile(r"住院|重病|癌|化疗|手术|去世|过世|走了|病危|ICU|icu|重症|抢救|轻生|不想活")
_CN_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8,
              "九": 9, "十": 10}


class Offers(Protocol):
    max_extension_days: int
    max_installments: int
    max_waiver_pct: float


class PromiseLimits(Protocol):
    max_days_ahead: int
    min_amount_pct: float


class SegmentView(Protocol):
    id: str
    offers: Offers
    promise: PromiseLimits
    escalate: tuple[str, ...]


class SegmentChooser(Protocol):
    def segment_for(self, bucket: str, ability: str = "normal",
                    willingness: str = "unknown") -> SegmentView: ...


@dataclass(frozen=True)
class RecentPayment:
    paid_on: date
    amount: Decimal
    channel: str | None


@dataclass(frozen=True)
class LoanFacts:
    """What the agent may know about the loan, computed from the position at this turn."""

    borrower_name: str
    dpd: int
    bucket: str
    overdue: Decimal
    penalty: Decimal
    total_due: Decimal
    outstanding: Decimal
    settle: Decimal
    next_due_date: date | None
    next_due_amount: Decimal
    oldest_due_date: date | None
    annual_rate: Decimal
    penalty_rate_daily: Decimal
    today: date
    paused: bool = False
    recent_payments: tuple[RecentPayment, ...] = ()

    @property
    def masked_name(self) -> str:
        name = self.borrower_name or ""
        return name[:1] + "*" * max(1, len(name) - 1) if name else "机主"

    @property
    def collecting(self) -> bool:
        return self.total_due > 0 and not self.paused


@dataclass
class Effect:
    kind: str  # promise | flag | restrict | pause_loan | ability | callback | handoff
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Decision:
    acts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)
    end_reason: str | None = None

    def say(self, act: str, **values: Any) -> None:
        self.acts.append((act, values))

    def effect(self, effect_kind: str, /, **data: Any) -> None:
        self.effects.append(Effect(effect_kind, data))

    def flag(self, kind: str, note: str = "") -> None:
        self.effect("flag", kind=kind, note=note)


@dataclass
class DialogueState:
    """Everything the machine remembers between turns; serialised on the conversation row."""

    kind: str = "inbound"  # inbound | outbound
    channel: str = "chat"  # chat | voice | sms
    phase: str = MAIN
    verified: bool = False
    disclosed: bool = False
    pending: str | None = None
    draft: dict[str, Any] = field(default_factory=dict)
    unclear: int = 0
    abuse: int = 0
    refusals: int = 0
    verify_attempts: int = 0
    borrower_turns: int = 0
    ability: str = "normal"
    willingness: str | None = None
    outcome: str | None = None
    flags: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DialogueState:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def note_outcome(self, outcome: str) -> None:
        if self.outcome is None or OUTCOME_RANK[outcome] >= OUTCOME_RANK[self.outcome]:
            self.outcome = outcome

    def final_outcome(self) -> str:
        if self.outcome:
            return self.outcome
        return "no_response" if self.borrower_turns == 0 else "info"


def new_state(kind: str, channel: str, ability: str = "normal") -> DialogueState:
    """Outbound contacts and phone calls must confirm the right party before any debt detail."""
    needs_verification = kind == "outbound" or channel == "voice"
    return DialogueState(kind=kind, channel=channel, phase=VERIFY if needs_verification else MAIN,
                         verified=not needs_verification, ability=ability)


def _cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _fmt_date(day: date) -> str:
    return f"{day.month}月{day.day}日"


def _count_from(text: str) -> int | None:
    match = _COUNT.search(text)
    if not match:
        return None
    raw = match.group(1)
    if raw.isdigit():
        return int(raw)
    if raw == "十":
        return 10
    if raw.startswith("十"):
        return 10 + _CN_DIGITS.get(raw[1:], 0)
    if raw.endswith("十"):
        return _CN_DIGITS.get(raw[0], 1) * 10
    return _CN_DIGITS.get(raw[0])


class DialogueMachine:
    """One conversation's decisions. Construct per turn; it mutates the state it is given."""

    def __init__(self, state: DialogueState, facts: LoanFacts, strategy: SegmentChooser,
                 payment_channels: tuple[str, ...] = ("app", "alipay", "wechat", "bank_transfer")
                 ) -> None:
        self.state = state
        self.facts = facts
        self.strategy = strategy
        self.payment_channels = payment_channels

    @property
    def segment(self) -> SegmentView:
        return self.strategy.segment_for(self.facts.bucket, self.state.ability,
                                         self.state.willingness or "unknown")

    # -- opening ---------------------------------------------------------------------------
    def opening(self) -> Decision:
        decision = Decision()
        if self.state.phase == VERIFY:
            act = "opening_outbound_voice" if self.state.channel == "voice" else "opening_outbound"
            decision.say(act)
        else:
            decision.say("opening_inbound")
        return decision

    # -- one borrower turn -----------------------------------------------------------------
    def step(self, nlu: NluResult, text: str) -> Decision:
        state = self.state
        decision = Decision()
        if state.phase == ENDED:
            return decision
        state.borrower_turns += 1
        if nlu.willingness.value != "none":
            state.willingness = nlu.willingness.value
        intent = nlu.intent
        # Safety intents act at once, whatever the agent was waiting for.
        if intent in (Intent.STOP_CONTACT, Intent.WRONG_PARTY, Intent.DISPUTE, Intent.COMPLAINT,
                      Intent.REQUEST_HUMAN, Intent.ABUSE):
            state.pending = None
            self._dispatch(intent, nlu, text, decision)
        elif state.phase == VERIFY and state.pending != "callback_time":
            self._verify(intent, nlu, text, decision)
        elif state.pending and self._pending(intent, nlu, text, decision):
            pass
        else:
            state.pending = None
            self._dispatch(intent, nlu, text, decision)
        if intent is not Intent.OTHER:
            state.unclear = 0
        return decision

    def _end(self, decision: Decision, reason: str, outcome: str | None = None) -> None:
        if outcome:
            self.state.note_outcome(outcome)
        self.state.phase = ENDED
        self.state.pending = None
        decision.end_reason = reason

    def _flag(self, decision: Decision, kind: str, note: str = "") -> None:
        decision.flag(kind, note)
        if kind not in self.state.flags:
            self.state.flags.append(kind)

    # -- right-party verification ----------------------------------------------------------
    def _verify(self, intent: Intent, nlu: NluResult, text: str, decision: Decision) -> None:
        state = self.state
        if intent in (Intent.CONFIRM_IDENTITY, Intent.AFFIRM):
            state.verified = True
            state.phase = MAIN
            self._disclose(decision)
            return
        if intent is Intent.DENY:
            self._wrong_party(decision, "denied being the borrower")
            return
        if intent is Intent.CALLBACK_LATER:
            self._callback(nlu, text, decision)
            return
        state.verify_attempts += 1
        if state.verify_attempts >= 3:
            decision.say("goodbye")
            self._end(decision, "unverified", "unverified")
            return
        decision.say("verify_again")

    def _disclose(self, decision: Decision) -> None:
        self.state.disclosed = True
        if self.facts.collecting:
            decision.say("disclose_debt")
            self.state.pending = "plan"
        else:
            decision.say("disclose_current")

    def _wrong_party(self, decision: Decision, note: str) -> None:
        decision.say("wrong_party_goodbye")
        self._flag(decision, "wrong_party", note)
        decision.effect("restrict", kind="wrong_number", channel="all")
        self._end(decision, "wrong_party", "wrong_party")

    # -- replies to a pending question -------------------------------------------------------
    def _pending(self, intent: Intent, nlu: NluResult, text: str, decision: Decision) -> bool:
        """Handle the answer to what the agent asked; False means treat the turn afresh."""
        pending = self.state.pending
        has_slot = (nlu.first("amount") or nlu.first("date") or _FULL_AMOUNT.search(text)
                    or (pending == "ptp_amount" and _BARE_NUMBER.fullmatch(text.strip())))
        yes = intent in (Intent.AFFIRM, Intent.CONFIRM_IDENTITY)
        if pending in ("ptp_amount", "ptp_date", "plan") and (
            has_slot or intent is Intent.PROMISE_TO_PAY
        ):
            self._promise(nlu, text, decision)
            return True
        if pending == "plan" and yes:
            self.state.pending = "ptp_date"
            decision.say("ptp_ask_date")
            return True
        if pending == "ptp_confirm":
            if yes or (intent is Intent.PROMISE_TO_PAY and not has_slot):
                self._record_promise(decision, kind="promise")
                return True
            if has_slot:
                self._promise(nlu, text, decision)
                return True
            if intent is Intent.DENY:
                self.state.draft = {}
                self.state.pending = "ptp_date"
                decision.say("ptp_not_confirmed")
                return True
            return False
        if pending in ("offer_extension", "offer_installment", "offer_waiver"):
            if yes:
                kind = pending.removeprefix("offer_")
                self._record_promise(decision, kind=kind)
                return True
            if intent is Intent.DENY:
                self.state.draft = {}
                self.state.pending = "plan"
                decision.say("ask_plan")
                return True
            return False
        if pending == "hardship_choice" and yes:
            self._installment(text, decision)
            return True
        if pending == "refuse_offer" and yes:
            self._installment(text, decision)
            return True
        if pending == "complaint_handoff":
            if yes:
                self._handoff(decision, "complaint")
                return True
            if intent is Intent.DENY:
                self.state.pending = "anything_else"
                decision.say("anything_else")
                return True
            return False
        if pending == "callback_time" and intent in (Intent.OTHER, Intent.CALLBACK_LATER,
                                                     Intent.AFFIRM):
            self._record_callback(nlu, text, decision)
            return True
        if pending == "anything_else" and intent is Intent.DENY:
            decision.say("goodbye")
            self._end(decision, "completed")
            return True
        return False

    # -- intents -----------------------------------------------------------------------------
    def _dispatch(self, intent: Intent, nlu: NluResult, text: str, decision: Decision) -> None:
        handler = _HANDLERS.get(intent, DialogueMachine._other)
        handler(self, nlu, text, decision)

    def _greeting(self, nlu: NluResult, text: str, decision: Decision) -> None:
        if self.state.kind == "outbound" and not self.state.disclosed:
            self._disclose(decision)
        else:
            decision.say("greeting_reply")

    def _confirm_identity(self, nlu: NluResult, text: str, decision: Decision) -> None:
        if self.state.kind == "outbound" and not self.state.disclosed:
            self._disclose(decision)
        else:
            decision.say("greeting_reply")

    def _affirm(self, nlu: NluResult, text: str, decision: Decision) -> None:
        if self.facts.collecting and self.state.kind == "outbound":
            self.state.pending = "plan"
            decision.say("ask_plan")
        else:
            self.state.pending = "anything_else"
            decision.say("anything_else")

    def _deny(self, nlu: NluResult, text: str, decision: Decision) -> None:
        if self.facts.collecting and self.state.kind == "outbound":
            self._refuse(nlu, text, decision)
        else:
            decision.say("goodbye")
            self._end(decision, "completed")

    def _wrong_party_intent(self, nlu: NluResult, text: str, decision: Decision) -> None:
        self._wrong_party(decision, "said not the borrower")

    def _answer(self, act: str, decision: Decision) -> None:
        decision.say(act)
        if self.facts.collecting and self.state.kind == "outbound" and self.state.pending is None:
            self.state.pending = "plan"
            decision.say("ask_plan")
        elif self.state.pending is None:
            self.state.pending = "anything_else"

    def _balance(self, nlu: NluResult, text: str, decision: Decision) -> None:
        if self.facts.total_due > 0:
            self._answer("balance_overdue", decision)
        elif self.facts.next_due_date is not None:
            self._answer("balance_current", decision)
        else:
            self._answer("nothing_due", decision)

    def _due_date(self, nlu: NluResult, text: str, decision: Decision) -> None:
        if self.facts.total_due > 0:
            self._answer("due_date_overdue", decision)
        elif self.facts.next_due_date is not None:
            self._answer("due_date_current", decision)
        else:
            self._answer("nothing_due", decision)

    def _payment_method(self, nlu: NluResult, text: str, decision: Decision) -> None:
        channel = nlu.first("channel")
        if channel is not None:
            decision.say("payment_channel_ok" if channel.value in self.payment_channels else
                         "payment_methods", asked_channel=str(channel.value))
        else:
            decision.say("payment_methods")
        if self.state.pending is None:
            self.state.pending = "anything_else"

    def _fees(self, nlu: NluResult, text: str, decision: Decision) -> None:
        self._answer("fees", decision)

    def _early_settlement(self, nlu: NluResult, text: str, decision: Decision) -> None:
        self._answer("early_settlement", decision)

    def _credit_impact(self, nlu: NluResult, text: str, decision: Decision) -> None:
        self._answer("credit_impact", decision)

    # -- negotiation -------------------------------------------------------------------------
    def _promise(self, nlu: NluResult, text: str, decision: Decision) -> None:
        draft = self.state.draft
        amount = nlu.first("amount")
        when = nlu.first("date")
        base = self.facts.total_due if self.facts.total_due > 0 else self.facts.next_due_amount
        bare = _BARE_NUMBER.fullmatch(text.strip())
        if amount is not None:
            draft["amount"] = str(Decimal(str(amount.value)))
        elif bare and self.state.pending == "ptp_amount":
            # Answering "how much?", a bare number is the amount (no money word needed).
            draft["amount"] = bare.group(1)
        elif _HALF_AMOUNT.search(text) and base > 0:
            draft["amount"] = str(_cents(base / 2))
        elif _FULL_AMOUNT.search(text) and base > 0:
            draft["amount"] = str(base)
        if when is not None:
            draft["date"] = str(when.value)
        elif "date" not in draft and _NOW.search(text):
            draft["date"] = self.facts.today.isoformat()
        limits = self.segment.promise
        if "date" in draft:
            day = date.fromisoformat(draft["date"])
            latest = self.facts.today + timedelta(days=limits.max_days_ahead)
            if day < self.facts.today:
                del draft["date"]
                self.state.pending = "ptp_date"
                decision.say("ptp_date_past")
                return
            if day > latest:
                del draft["date"]
                self.state.pending = "ptp_date"
                decision.say("ptp_date_too_late", limit_date=_fmt_date(latest))
                return
        if "amount" in draft and base > 0:
            minimum = _cents(base * Decimal(str(limits.min_amount_pct)) / 100)
            if Decimal(draft["amount"]) < minimum:
                del draft["amount"]
                self.state.pending = "ptp_amount"
                decision.say("ptp_amount_too_low", min_amount=minimum)
                return
        if "amount" not in draft:
            self.state.pending = "ptp_amount"
            decision.say("ptp_ask_amount")
            return
        if "date" not in draft:
            self.state.pending = "ptp_date"
            decision.say("ptp_ask_date")
            return
        self.state.pending = "ptp_confirm"
        decision.say("ptp_readback", **self._draft_values())

    def _draft_values(self) -> dict[str, Any]:
        draft = self.state.draft
        values: dict[str, Any] = {}
        if "amount" in draft:
            values["amount"] = Decimal(draft["amount"])
        if "date" in draft:
            values["date"] = _fmt_date(date.fromisoformat(draft["date"]))
        for key in ("count", "days"):
            if key in draft:
                values[key] = draft[key]
        for key in ("per", "waiver", "after_waiver"):  # money is kept as text in the state
            if key in draft:
                values[key] = Decimal(draft[key])
        if "limit_date" in draft:
            values["limit_date"] = _fmt_date(date.fromisoformat(draft["limit_date"]))
        return values

    def _record_promise(self, decision: Decision, kind: str) -> None:
        draft = self.state.draft
        act = {"promise": "ptp_recorded", "extension": "extension_recorded",
               "installment": "installment_recorded", "waiver": "waiver_recorded"}[kind]
        decision.effect("promise", amount=draft["amount"], due_date=draft["date"], kind=kind,
                        plan={k: draft[k] for k in ("count", "per", "waiver") if k in draft})
        decision.say(act, **self._draft_values())
        if kind == "waiver":
            self._flag(decision, "waiver_request", f"penalty waiver {draft.get('waiver')}")
        self.state.note_outcome("ptp")
        self.state.draft = {}
        self.state.pending = "anything_else"
        decision.say("anything_else")

    def _promise_intent(self, nlu: NluResult, text: str, decision: Decision) -> None:
        if not self.facts.collecting and self.facts.next_due_date is None:
            self._answer("nothing_due", decision)
            return
        self._promise(nlu, text, decision)

    def _extension(self, nlu: NluResult, text: str, decision: Decision) -> None:
        offers = self.segment.offers
        if offers.max_extension_days <= 0 or not self.facts.collecting:
            decision.say("extension_unavailable")
            self.state.pending = "anything_else"
            return
        latest = self.facts.today + timedelta(days=offers.max_extension_days)
        asked = nlu.first("date")
        day = latest
        if asked is not None:
            asked_day = date.fromisoformat(str(asked.value))
            if self.facts.today < asked_day < latest:
                day = asked_day
        self.state.draft = {"amount": str(self.facts.total_due), "date": day.isoformat(),
                            "limit_date": day.isoformat(), "days": (day - self.facts.today).days}
        self.state.pending = "offer_extension"
        decision.say("extension_offer", **self._draft_values())

    def _installment(self, text: str, decision: Decision) -> None:
        offers = self.segment.offers
        if offers.max_installments < 2 or not self.facts.collecting:
            decision.say("installment_unavailable")
            self.state.pending = "anything_else"
            return
        wanted = _count_from(text) or offers.max_installments
        count = max(2, min(wanted, offers.max_installments))
        per = _cents(self.facts.total_due / count)
        first = self.facts.today + timedelta(days=min(7, self.segment.promise.max_days_ahead or 7))
        self.state.draft = {"amount": str(per), "date": first.isoformat(), "count": count,
                            "per": str(per)}
        self.state.pending = "offer_installment"
        decision.say("installment_offer", **self._draft_values())

    def _installment_intent(self, nlu: NluResult, text: str, decision: Decision) -> None:
        self._installment(text, decision)

    def _waiver(self, nlu: NluResult, text: str, decision: Decision) -> None:
        offers = self.segment.offers
        waiver = _cents(self.facts.penalty * Decimal(str(offers.max_waiver_pct)) / 100)
        if waiver <= 0 or not self.facts.collecting:
            decision.say("waiver_handoff")
            self._handoff(decision, "waiver beyond the agent's authority", say=False)
            return
        after = self.facts.total_due - waiver
        day = self.facts.today + timedelta(days=max(1, self.segment.promise.max_days_ahead))
        self.state.draft = {"amount": str(after), "date": day.isoformat(),
                            "waiver": str(waiver), "after_waiver": str(after)}
        self.state.pending = "offer_waiver"
        decision.say("waiver_offer", **self._draft_values())

    def _hardship(self, nlu: NluResult, text: str, decision: Decision) -> None:
        self.state.ability = "hardship"
        decision.effect("ability", ability="hardship")
        reason = nlu.first("hardship_reason")
        self._flag(decision, "hardship", str(reason.value) if reason else "")
        self.state.note_outcome("hardship")
        if _VULNERABLE.search(text):
            decision.say("hardship_vulnerable")
            self._flag(decision, "vulnerable")
            decision.effect("restrict", kind="vulnerable_hold", channel="all")
            self._handoff(decision, "vulnerable borrower", say=False)
            return
        offers = self.segment.offers
        decision.say("hardship_ack", max_days=offers.max_extension_days,
                     max_count=offers.max_installments)
        self.state.pending = "hardship_choice"

    def _dispute(self, nlu: NluResult, text: str, decision: Decision) -> None:
        decision.say("dispute_ack")
        self._flag(decision, "dispute", text[:80])
        decision.effect("restrict", kind="disputed", channel="all")
        decision.effect("pause_loan", reason="disputed")
        self.state.note_outcome("dispute")
        if self.state.kind == "outbound":
            decision.say("goodbye")
            self._end(decision, "dispute")
        else:
            self.state.pending = "anything_else"
            decision.say("anything_else")

    def _claim_paid(self, nlu: NluResult, text: str, decision: Decision) -> None:
        recent = [p for p in self.facts.recent_payments
                  if (self.facts.today - p.paid_on).days <= 7]
        if recent:
            last = max(recent, key=lambda p: p.paid_on)
            note = (f"目前仍需还款{self.facts.total_due}元。" if self.facts.total_due > 0
                    else "您的当前账单已还清。")
            decision.say("claim_paid_found", paid_on=_fmt_date(last.paid_on),
                         paid_amount=last.amount, remaining_note=note)
            if self.facts.total_due <= 0:
                self.state.note_outcome("paid")
            self.state.pending = "anything_else"
            return
        decision.say("claim_paid_not_found")
        self._flag(decision, "payment_claim", text[:80])
        decision.effect("restrict", kind="disputed", channel="all")
        decision.effect("pause_loan", reason="payment_claim")
        self.state.note_outcome("dispute")
        self.state.pending = "anything_else"

    def _refuse(self, nlu: NluResult, text: str, decision: Decision) -> None:
        self.state.refusals += 1
        self.state.note_outcome("refused")
        if self.state.refusals >= 2:
            decision.say("refuse_end")
            self._end(decision, "refused")
            return
        decision.say("refuse_first")
        self.state.pending = "refuse_offer"

    def _stop_contact(self, nlu: NluResult, text: str, decision: Decision) -> None:
        channel = "all" if _ALL_CHANNELS.search(text) else self.state.channel
        decision.say("cease_ack", ceased_channel=channel)
        self._flag(decision, "cease_requested", channel)
        decision.effect("restrict", kind="cease_requested", channel=channel)
        self._end(decision, "cease_requested", "cease")

    def _complaint(self, nlu: NluResult, text: str, decision: Decision) -> None:
        decision.say("complaint_ack")
        self._flag(decision, "complaint", text[:80])
        self.state.pending = "complaint_handoff"

    def _handoff(self, decision: Decision, note: str, say: bool = True) -> None:
        if say:
            decision.say("handoff")
        self._flag(decision, "handoff", note)
        decision.effect("handoff", note=note)
        self._end(decision, "handoff", "handoff")

    def _request_human(self, nlu: NluResult, text: str, decision: Decision) -> None:
        self._handoff(decision, "borrower asked for a human")

    def _callback(self, nlu: NluResult, text: str, decision: Decision) -> None:
        if nlu.first("date") is not None or re.search(r"[0-9一二三四五六七八九十两]+点|上午|下午|晚上|中午", text):
            self._record_callback(nlu, text, decision)
            return
        self.state.pending = "callback_time"
        decision.say("callback_ask_time")

    def _record_callback(self, nlu: NluResult, text: str, decision: Decision) -> None:
        when = nlu.first("date")
        phrase = (when.text if when else "") or _callback_phrase(text) or "稍后"
        decision.effect("callback", date=str(when.value) if when else None, phrase=phrase)
        decision.say("callback_ack", callback_when=phrase)
        self._end(decision, "callback", "callback")

    def _abuse(self, nlu: NluResult, text: str, decision: Decision) -> None:
        self.state.abuse += 1
        self._flag(decision, "abuse")
        if self.state.abuse >= 2:
            decision.say("abuse_end")
            self._end(decision, "abuse", "abuse")
        else:
            decision.say("abuse_warn")

    def _other(self, nlu: NluResult, text: str, decision: Decision) -> None:
        self.state.unclear += 1
        if self.state.unclear >= 3:
            decision.say("fallback_human")
            self._handoff(decision, "not understood three times", say=False)
        else:
            decision.say("clarify")


_WHEN = re.compile(r"(?:今天|明天|后天|今晚|周[一二三四五六日天末])?(?:上午|下午|晚上|中午|早上)?"
                   r"(?:[0-9一二三四五六七八九十两]{1,3}点(?:半|[0-9一二三四五六七八九十]{1,3}分?)?)?")


def _callback_phrase(text: str) -> str:
    """The longest time phrase the borrower gave (明天下午三点 rather than 下午)."""
    return max((m.group(0) for m in _WHEN.finditer(text)), key=len, default="")


_HANDLERS = {
    Intent.GREETING: DialogueMachine._greeting,
    Intent.CONFIRM_IDENTITY: DialogueMachine._confirm_identity,
    Intent.WRONG_PARTY: DialogueMachine._wrong_party_intent,
    Intent.ASK_BALANCE: DialogueMachine._balance,
    Intent.ASK_DUE_DATE: DialogueMachine._due_date,
    Intent.ASK_PAYMENT_METHOD: DialogueMachine._payment_method,
    Intent.ASK_FEES: DialogueMachine._fees,
    Intent.ASK_EARLY_SETTLEMENT: DialogueMachine._early_settlement,
    Intent.ASK_CREDIT_IMPACT: DialogueMachine._credit_impact,
    Intent.PROMISE_TO_PAY: DialogueMachine._promise_intent,
    Intent.CLAIM_PAID: DialogueMachine._claim_paid,
    Intent.REQUEST_EXTENSION: DialogueMachine._extension,
    Intent.REQUEST_INSTALLMENT: DialogueMachine._installment_intent,
    Intent.REQUEST_WAIVER: DialogueMachine._waiver,
    Intent.HARDSHIP: DialogueMachine._hardship,
    Intent.DISPUTE: DialogueMachine._dispute,
    Intent.REFUSE_TO_PAY: DialogueMachine._refuse,
    Intent.STOP_CONTACT: DialogueMachine._stop_contact,
    Intent.COMPLAINT: DialogueMachine._complaint,
    Intent.REQUEST_HUMAN: DialogueMachine._request_human,
    Intent.CALLBACK_LATER: DialogueMachine._callback,
    Intent.AFFIRM: DialogueMachine._affirm,
    Intent.DENY: DialogueMachine._deny,
    Intent.ABUSE: DialogueMachine._abuse,
    Intent.OTHER: DialogueMachine._other,
}
