"""The conversation engine: commands run against a stack of flows (Rasa CALM's shape, no LLM).

Pure and synchronous: no I/O, no wording. ``Engine.step`` takes the commands understanding
produced for one message and returns the acts to word plus the typed effects to persist.
Business flows come from YAML (``FlowBook``); an interrupting flow or a question stacks on
top of the flow in progress, which resumes (re-asks its open question) when it completes.
Repair patterns: a later slot value supersedes the earlier one (and the stored promise),
``Cancel`` drops the flow, answers are digressions, ``Clarify`` asks once then offers a
human, and a collection-changing reading that is not certain is confirmed before it acts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Protocol

from agent.core import effects as fx
from agent.core.commands import (
    Affirm,
    Answer,
    Cancel,
    Clarify,
    Command,
    CorrectSlot,
    Deny,
    Goodbye,
    HandOff,
    SetSlot,
    StartFlow,
)
from agent.core.flows import FlowBook, Step
from agent.core.money import ZERO, cents, fraction_of

VERIFY = "verify"
MAIN = "main"
ENDED = "ended"

OUTCOME_RANK = {
    "wrong_party": 10, "dispute": 9, "cease": 8, "paid": 7, "ptp": 6, "hardship": 5,
    "handoff": 4, "callback": 3, "refused": 2, "abuse": 2, "third_party": 2, "unverified": 1,
    "info": 1, "no_response": 0,
}
NEGOTIATION = ("promise", "extension", "installment", "waiver", "callback", "refusal")
SAFETY_ORDER = ("cease", "wrong_number", "third_party", "dispute", "complaint", "abuse",
                "claim_paid", "hardship", "handoff", "goodbye")


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


class SegmentChooser(Protocol):
    def segment_for(self, bucket: str, ability: str = "normal",
                    willingness: str = "unknown") -> SegmentView: ...


@dataclass(frozen=True)
class PaymentFact:
    paid_on: date
    amount: Decimal
    channel: str | None = None


@dataclass(frozen=True)
class LoanFacts:
    """What the agent may know about the loan: position fields, exact (rounded when worded)."""

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
    payments: tuple[PaymentFact, ...] = ()

    @property
    def masked_name(self) -> str:
        name = self.borrower_name or ""
        return name[:1] + "*" * max(1, len(name) - 1) if name else "机主"

    @property
    def collecting(self) -> bool:
        return self.total_due > 0 and not self.paused

    @property
    def promise_base(self) -> Decimal:
        """What "all of it" means now: what is due (never the whole-loan payoff)."""
        return self.total_due if self.total_due > 0 else self.next_due_amount


Act = tuple[str, dict[str, Any]]


@dataclass
class Decision:
    acts: list[Act] = field(default_factory=list)
    effects: list[fx.Effect] = field(default_factory=list)
    end_reason: str | None = None
    slots_set: dict[str, Any] = field(default_factory=dict)

    def say(self, act: str, **values: Any) -> None:
        self.acts.append((act, values))

    @property
    def act_names(self) -> list[str]:
        return [a for a, _ in self.acts]


@dataclass
class DialogueState:
    """Everything the engine remembers between turns (JSON on the conversation row)."""

    kind: str = "inbound"
    channel: str = "chat"
    phase: str = MAIN
    verified: bool = False
    disclosed: bool = False
    stack: list[dict[str, Any]] = field(default_factory=list)
    slots: dict[str, Any] = field(default_factory=dict)
    expect: str | None = None
    promise: dict[str, Any] | None = None  # the conversation's live stored promise
    counters: dict[str, int] = field(default_factory=dict)
    borrower_turns: int = 0
    ability: str = "normal"
    willingness: str | None = None
    outcome: str | None = None
    flags: list[str] = field(default_factory=list)
    end_after: str | None = None
    last_reply: list[str] = field(default_factory=list)  # never say the same thing twice

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

    def bump(self, name: str) -> int:
        self.counters[name] = self.counters.get(name, 0) + 1
        return self.counters[name]


def new_state(kind: str, channel: str, ability: str = "normal") -> DialogueState:
    """Outbound contacts and phone calls confirm the right party before any debt detail."""
    needs_verification = kind == "outbound" or channel == "voice"
    return DialogueState(kind=kind, channel=channel, phase=VERIFY if needs_verification else MAIN,
                         verified=not needs_verification, ability=ability)


def cn_date(day: date | None) -> str:
    return f"{day.month}月{day.day}日" if day else "—"


class Engine:
    """One conversation's decisions. Construct per turn; it mutates the state it is given."""

    def __init__(self, state: DialogueState, facts: LoanFacts, strategy: SegmentChooser,
                 flows: FlowBook,
                 payment_channels: tuple[str, ...] = ("app", "alipay", "wechat", "bank_transfer")
                 ) -> None:
        self.state = state
        self.facts = facts
        self.strategy = strategy
        self.flows = flows
        self.payment_channels = payment_channels
        self.d = Decision()
        self._busy = False

    # -- helpers ---------------------------------------------------------------------------
    @property
    def segment(self) -> SegmentView:
        return self.strategy.segment_for(self.facts.bucket, self.state.ability,
                                         self.state.willingness or "unknown")

    def _say(self, act: str, **values: Any) -> None:
        self.d.say(act, **values)

    def _ask(self, act: str, **values: Any) -> None:
        self.d.say(act, **values)
        self.state.expect = act

    def _flag(self, kind: str, note: str = "") -> None:
        self.d.effects.append(fx.Flag(kind, note))
        if kind not in self.state.flags:
            self.state.flags.append(kind)

    def _end(self, reason: str, outcome: str | None = None) -> None:
        if outcome:
            self.state.note_outcome(outcome)
        self.state.phase = ENDED
        self.state.stack = []
        self.state.expect = None
        self.d.end_reason = reason

    @property
    def ended(self) -> bool:
        return self.state.phase == ENDED

    def _top(self) -> dict[str, Any] | None:
        return self.state.stack[-1] if self.state.stack else None

    def _frame(self, flow: str) -> dict[str, Any] | None:
        return next((f for f in reversed(self.state.stack) if f["flow"] == flow), None)

    def _push(self, flow: str, confirm: bool = False, args: dict[str, Any] | None = None,
              keep: list[str] | None = None) -> None:
        if flow not in self.flows.flows:
            return
        existing = self._frame(flow)
        if existing is not None and flow in NEGOTIATION:
            self.state.stack.remove(existing)
            self.state.stack.append(existing)
            return
        if flow in NEGOTIATION:  # a new plan replaces the one being discussed (change of mind)
            self.state.stack = [f for f in self.state.stack
                                if f["flow"] not in NEGOTIATION or f["flow"] in (keep or ())]
        self.state.stack.append({"flow": flow, "step": 0, "confirm": confirm,
                                 "args": args or {}})

    # -- opening ---------------------------------------------------------------------------
    def opening(self) -> Decision:
        self.d = Decision()
        if self.state.phase == VERIFY:
            act = "opening_outbound_voice" if self.state.channel == "voice" else "opening_outbound"
            self._ask(act)
            self.state.expect = "verify.ask"
        else:
            self._say("opening_inbound")
        return self.d

    def no_input(self, count: int) -> Decision:
        self.d = Decision()
        if count >= 3:
            self._say("silence_goodbye")
            self._end("no_input")
        else:
            self._say("reprompt")
        return self.d

    # -- one borrower turn -------------------------------------------------------------------
    def step(self, commands: list[Command], willingness: str | None = None) -> Decision:
        self.d = Decision()
        state = self.state
        if self.ended:
            return self.d
        state.borrower_turns += 1
        if willingness == "refuse" and not any(
                isinstance(c, StartFlow) and c.flow == "refusal" for c in commands):
            willingness = None  # "不免我就不还了": a condition, not the refusing segment
        if willingness and willingness != "none":
            state.willingness = willingness
        expect, state.expect = state.expect, None
        if not any(isinstance(c, Clarify) for c in commands):
            state.counters["unclear"] = 0
        if state.phase == VERIFY:
            self._verify(commands, expect)
            return self.d
        self._run(commands, expect)
        return self.d

    def _run(self, commands: list[Command], expect: str | None) -> None:
        slots = [c for c in commands if isinstance(c, SetSlot | CorrectSlot)]
        flows = [c for c in commands if isinstance(c, StartFlow)]
        safety = sorted((c for c in flows if c.flow in SAFETY_ORDER),
                        key=lambda c: SAFETY_ORDER.index(c.flow))
        business = [c for c in flows if c.flow not in SAFETY_ORDER]
        answers = [c for c in commands if isinstance(c, Answer)]
        yes = any(isinstance(c, Affirm) for c in commands)
        no = next((c for c in commands if isinstance(c, Deny)), None)
        said_before = len(self.d.acts)
        self._busy = bool(slots or business or safety or answers)
        bye = any(isinstance(c, Goodbye) for c in commands)
        if bye and not slots and not business and not (yes and self._awaiting(expect)):
            self._goodbye_action()
            return
        if any(isinstance(c, HandOff) for c in commands) and not safety:
            if any(isinstance(c, Answer) and c.topic == "robot" for c in commands):
                self._say("answer.robot")  # "你是机器人吧？给我转人工": answer, then a human
            self._handoff_action("borrower asked for a human")
            return
        if business:
            # Several requests in one message: the first asked is discussed first; several
            # plans asked together are all offered, and the borrower picks one.
            wanted = list(dict.fromkeys(c.flow for c in business))
            plans = [f for f in wanted if f in ("waiver", "installment", "extension")]
            if len(plans) > 1:
                self._offer_all(plans[:-1])
                wanted = [f for f in wanted if f not in plans[:-1]]
            if not any(f in ("promise",) for f in wanted) or len(wanted) == 1:
                for flow in reversed(wanted):
                    self._push(flow, False, next(c.args for c in business if c.flow == flow),
                               keep=wanted)
            else:
                for flow in reversed(wanted):
                    self._push(flow, False, {}, keep=wanted)
        changed = self._apply_slots(slots, expect)
        if no is not None and (no.slot and no.slot in self.d.slots_set or not no.slot and changed):
            no = None  # "明天不行 改周六", "先还两千 行不": the new terms answer it
        if expect == "promise.readback" and slots and not changed and no is None and not business:
            yes = True  # "周五全部": the terms just read back, said again
        if yes:
            self._affirm(expect, changed)
        elif no is not None:
            self._deny(expect, no)
        on_stack = {f["flow"]: f for f in self.state.stack}
        for command in reversed(safety):  # highest priority ends on top and runs first
            if command.flow in on_stack and command.flow != "abuse":
                frame = on_stack[command.flow]
                if not command.confirm:  # now stated plainly: no need to ask again
                    frame["confirm"] = False
                    frame["args"] = command.args or frame.get("args", {})
                    if expect and expect.startswith(command.flow + "."):
                        frame["step"] = 0
                continue
            self.state.stack.append({"flow": command.flow, "step": 0,
                                     "confirm": command.confirm, "args": command.args,
                                     "note": command.clause})
        for answer in answers:
            self._answer(answer)
        if any(isinstance(c, Cancel) for c in commands) and not changed:
            self._cancel()
        if any(isinstance(c, HandOff) for c in commands):
            complaint = self._frame("complaint")
            if complaint is not None:  # "我要投诉 给我转人工": record it, then a human
                self._record_complaint_action(complaint)
                self._say("complaint.recorded", variant="brief")
            self._handoff_action("borrower asked for a human")
            return
        clarify = next((c for c in commands if isinstance(c, Clarify)), None)
        if clarify is not None and len(self.d.acts) == said_before and not safety \
                and not business and not changed:
            self._clarify(clarify, expect)
            if self.ended or self.state.expect:
                return
        self._continue()
        if self.ended:
            return
        if self.state.end_after and not any(self.state.expect == a for a in ("cease.confirm",)):
            reason = self.state.end_after
            self.state.end_after = None
            if not self.state.stack:
                self._end(reason)
                return
        if bye and not self.state.expect:  # "对 就这样 先挂了": recorded, then goodbye
            self._goodbye_action()
        elif len(self.d.acts) == said_before:
            self._clarify(Clarify("unclear"), expect)
        elif not self.state.expect and not self.state.stack:
            self._ask("anything_else")

    # -- verification (phone and outbound) -----------------------------------------------
    def _verify(self, commands: list[Command], expect: str | None) -> list[Command]:
        """Nothing about the debt before the right party is confirmed."""
        state = self.state
        allowed = sorted((c for c in commands if isinstance(c, StartFlow) and c.flow in (
            "cease", "wrong_number", "third_party", "callback", "abuse", "goodbye")),
            key=lambda c: SAFETY_ORDER.index(c.flow) if c.flow in SAFETY_ORDER else 99)
        if any(isinstance(c, Goodbye) for c in commands):
            self._goodbye_action()
            return []
        if any(isinstance(c, HandOff) for c in commands):
            self._handoff_action("asked for a human before verification")
            return []
        identity = any(isinstance(c, SetSlot) and c.slot == "identity" for c in commands)
        yes = any(isinstance(c, Affirm) for c in commands)
        third = any(c.flow in ("wrong_number", "third_party") for c in allowed)
        if yes and not identity and state.counters.get("third_party"):
            self._say("goodbye")  # "行 她回来我跟她说": the message will be passed on
            self._end("third_party", "third_party")
            return []
        if (identity or yes) and not third:
            state.verified = True
            state.phase = MAIN
            rest = [c for c in commands if not isinstance(c, Affirm | Clarify) and
                    not (isinstance(c, SetSlot) and c.slot == "identity")]
            self._disclose(brief=bool(rest))
            if rest:
                self._run(rest, None)
            return []
        if allowed and allowed[0].flow == "callback" and not any(
                isinstance(c, SetSlot) and c.slot == "callback_time" for c in commands):
            allowed = allowed[1:]  # "哪位啊 我正忙着呢": who is this first; no time to note yet
        if allowed:
            first = allowed[0]
            if first.flow == "callback":
                slot = next((c for c in commands if isinstance(c, SetSlot)
                             and c.slot == "callback_time"), None)
                if slot is not None:
                    state.slots["callback_time"] = slot.value
            self.state.stack.append({"flow": first.flow, "step": 0, "confirm": first.confirm,
                                     "args": first.args})
            self._continue()
            return []
        if any(isinstance(c, Deny) for c in commands):
            # A bare "不是": not the borrower, but not yet a wrong number either; ask, and
            # say nothing about the debt.
            if state.counters.get("third_party") or state.counters.get("denied"):
                self.state.stack.append({"flow": "third_party", "step": 0, "confirm": False,
                                         "args": {}})
                self._continue()
            else:
                state.bump("denied")
                self._ask("verify.ask", variant="denied")
            return []
        for answer in (c for c in commands if isinstance(c, Answer)):
            if answer.topic == "robot":
                self._say("answer.robot")
        if state.bump("verify_attempts") >= 3:
            self._say("goodbye")
            self._end("unverified", "unverified")
            return []
        self._ask("verify.ask")
        return []

    def _disclose(self, brief: bool = False) -> None:
        """The debt, once identity is confirmed; brief (no question) when the borrower already
        said what they want in the same breath."""
        self.state.disclosed = True
        act = "disclose.debt" if self.facts.collecting else "disclose.current"
        if brief:
            self._say(act, variant="brief")
        else:
            self._ask(act)

    # -- slots --------------------------------------------------------------------------
    def _resolve_amount(self, value: Any) -> Decimal | None:
        base = self.facts.promise_base
        if value == "half":
            return fraction_of(base, 1, 2)
        if value == "all":
            return cents(base)
        if value == "rest":
            first = self.state.slots.get("first_amount")
            paid = Decimal(first) if first else ZERO
            return cents(base - paid) if base > paid else None
        try:
            stated = cents(Decimal(str(value)))
        except ArithmeticError:
            return None
        if base > 0 and stated > base:  # more than is due: the promise is for what is due
            return cents(base)
        return stated

    def _resolve_date(self, value: Any) -> str | None:
        if value == "today":
            return self.facts.today.isoformat()
        if value == "payday":
            return self.state.slots.get("payday")  # the day the borrower named as payday
        return str(value)

    def _apply_slots(self, slots: list[SetSlot | CorrectSlot], expect: str | None) -> bool:
        """Write slots; True when a negotiation value changed (the flow re-checks it)."""
        changed = False
        values: dict[str, Any] = {}
        # The most confident reading wins (a clause with a pay verb over an aside), then the
        # latest: "明天工资还没到 改下周一吧" is Monday.
        best = {}
        for command in slots:
            best[command.slot] = max(best.get(command.slot, 0.0), command.confidence)
        for command in slots:
            if command.slot == "callback_time":
                merged = dict(values.get("callback_time", [{}])[-1] or {})
                merged.update({k: v for k, v in (command.value or {}).items() if v})
                values["callback_time"] = [merged]
                continue
            if command.confidence >= best[command.slot]:
                values.setdefault(command.slot, []).append(command.value)
        if "amount" in values and len(values["amount"]) >= 2 and "rest" in values["amount"]:
            # "500 now and the rest on payday": the first part is the promise for now.
            first = next(v for v in values["amount"] if v != "rest")
            values["amount"] = [first]
        for slot, candidates in values.items():
            value = candidates[-1]
            if slot == "amount":
                amount = self._resolve_amount(value)
                if amount is None or amount <= 0:
                    continue
                new: Any = str(amount)
            elif slot == "date":
                resolved = self._resolve_date(value)
                if resolved is None:
                    self.state.slots["date_hint"] = value
                    continue
                new = resolved
            else:
                new = value
            if slot in ("amount", "date", "count") and self.state.slots.get(slot) != new:
                changed = True
            self.state.slots[slot] = new
            self.d.slots_set[slot] = new
        if changed and not any(f["flow"] in ("promise", "extension", "installment", "waiver")
                               for f in self.state.stack):
            if "amount" in values or "date" in values:
                self._push("promise")
        if changed:
            for frame in self.state.stack:
                if frame["flow"] in ("promise", "extension", "installment", "waiver"):
                    frame["step"] = 0
        return changed

    # -- yes / no in context ---------------------------------------------------------------
    def _awaiting(self, expect: str | None) -> tuple[dict[str, Any], Step] | None:
        top = self._top()
        if top is None or expect is None:
            return None
        steps = self.flows.flows[top["flow"]].steps
        if top["step"] < len(steps):
            step = steps[top["step"]]
            if step.confirm == expect:
                return top, step
        return None

    def _affirm(self, expect: str | None, changed: bool) -> None:
        awaiting = self._awaiting(expect)
        if awaiting is not None:
            frame, _ = awaiting
            if frame["flow"] == "cease" and not frame.get("args", {}).get("channels"):
                self.state.stack.remove(frame)  # "知道了" to a choice is not a choice
                return
            frame["step"] += 1
            return
        top = self._top()
        if changed and top is not None and (
                top["flow"] == "promise" and expect == "promise.readback"
                or top["flow"] in ("installment", "extension", "waiver")
                and expect and expect.startswith("offer.")):
            top["affirmed"] = True  # "对 今天晚点就转": yes, with a tweak
            return
        if changed:
            return
        if expect == "promise.ask_amount" and top is not None and top["flow"] == "promise" \
                and self.facts.promise_base > 0:
            # "行" to "当前应还X元，您准备还多少": the figure just quoted
            self.state.slots["amount"] = self.d.slots_set["amount"] = str(
                cents(self.facts.promise_base))
            return
        if expect == "promise.counter" and top is not None and top["flow"] == "promise":
            counter = top.get("counter", {})
            if any(k in counter and self.d.slots_set[k] != counter[k] for k in self.d.slots_set):
                top["step"] = 0  # "对 就月底": yes to paying, no to the counter: insist
                return
            self.state.slots.update(counter)
            self.d.slots_set.update(counter)
            top["step"] = 0
            return
        if expect in ("disclose.debt", "promise.ask_plan"):
            self.state.slots["date"] = self.facts.today.isoformat()
            self._push("promise")
            return
        if expect in ("hardship.ack", "refusal.consequences"):
            self._push("installment")
            return
        if expect == "clarify.offer_human":
            self._handoff_action("could not understand the borrower")
            return
        if expect == "anything_else":
            self._ask("answer.greeting")
            return
        if expect == "disclose.current":
            self._ask("answer.greeting")

    def _deny(self, expect: str | None, command: Deny) -> None:
        awaiting = self._awaiting(expect)
        if awaiting is not None:
            frame, step = awaiting
            if step.on_deny == "cancel":
                self.state.stack.remove(frame)
                self._say("cancelled")
            elif step.on_deny == "end":
                self.state.stack.remove(frame)
            elif step.on_deny == "ask_again":
                slot = command.slot or "date"
                self.state.slots.pop(slot, None)
                frame["step"] = 0
                frame["retry"] = True
            else:
                self.state.stack.remove(frame)
                self._push(step.on_deny)
            return
        top = self._top()
        if command.slot and top is not None and top["flow"] in NEGOTIATION:
            self.state.slots.pop(command.slot, None)
            top["step"] = 0
            return
        if command.slot and self.state.promise is not None:
            self.state.slots.pop(command.slot, None)
            self._push("promise")
            return
        if expect == "anything_else" or expect == "disclose.current":
            if not self._busy:
                self._goodbye_action()
            return
        if expect == "clarify.offer_human":
            self._ask("anything_else")
            return
        if expect in ("disclose.debt", "promise.ask_plan"):
            self._push("promise")
            return
        if expect == "promise.counter" and top is not None and top["flow"] == "promise":
            if self.state.bump("counter_refused") >= 2:
                self._handoff_action("promise beyond the agent's authority", variant="promise")
            else:
                self._push("installment")
            return
        if expect == "refusal.consequences":
            self._push("refusal")

    def _offer_all(self, plans: list[str]) -> None:
        """Offer plans side by side (each within limits); the last one asked waits for yes."""
        for plan in plans:
            frame = {"flow": plan, "step": 0, "confirm": False, "args": {}}
            result = getattr(self, f"_offer_{plan}_action")(frame)
            if result == "next":
                self._say(f"offer.{plan}", **self._ask_values(f"offer.{plan}", frame))
            if self.ended:
                return

    def _cancel(self) -> None:
        for frame in reversed(self.state.stack):
            if frame["flow"] in NEGOTIATION:
                self.state.stack.remove(frame)
                self._say("cancelled")
                return

    # -- repair: clarification ---------------------------------------------------------------
    def _clarify(self, command: Clarify, expect: str | None) -> None:
        if command.candidate == "dispute":
            self.state.stack.append({"flow": "dispute", "step": 0, "confirm": True, "args": {}})
            return
        if command.candidate == "wrong_party" and not self.state.verified:
            self._ask("verify.ask")
            return
        count = self.state.bump("unclear")
        if command.reason == "sensitive_numbers":
            self._ask("clarify", variant="numbers")
            self._resume_or_nothing()
            return
        if count >= 3:
            self._handoff_action("not understood three times", variant="unclear")
        elif count == 2:
            self._ask("clarify.offer_human")
        else:
            self._ask("clarify")
            self._resume_or_nothing()

    def _resume_or_nothing(self) -> None:
        self._continue()

    # -- the flow interpreter ------------------------------------------------------------------
    def _continue(self) -> None:
        """Run the top flow until it needs the borrower or the stack is empty."""
        guard = 0
        while self.state.stack and not self.ended and guard < 50:
            guard += 1
            frame = self.state.stack[-1]
            flow = self.flows.flows[frame["flow"]]
            if frame["step"] >= len(flow.steps):
                self.state.stack.pop()
                continue
            step = flow.steps[frame["step"]]
            if step.when and not self._condition(step.when, frame):
                frame["step"] += 1
                continue
            kind = step.kind
            if kind == "collect":
                assert step.collect is not None and step.ask is not None
                if step.collect in self.state.slots:
                    frame["step"] += 1
                    continue
                self._ask(step.ask, **self._ask_values(step.ask, frame))
                return
            if kind == "check":
                if self._check(frame):
                    frame["step"] += 1
                    continue
                return
            if kind == "action":
                assert step.action is not None
                result = getattr(self, f"_{step.action}_action")(frame) if step.action not in (
                    "goodbye", "handoff") else getattr(self, f"_{step.action}_action")()
                if result == "wait" or self.ended:
                    return
                if result == "done":
                    if frame in self.state.stack:
                        self.state.stack.remove(frame)
                    continue
                frame["step"] += 1
                continue
            if kind == "confirm":
                assert step.confirm is not None
                if frame.pop("affirmed", False):
                    frame["step"] += 1
                    continue
                self._ask(step.confirm, **self._ask_values(step.confirm, frame))
                return
            if kind == "say":
                assert step.say is not None
                self._say(step.say, **self._ask_values(step.say, frame))
                frame["step"] += 1
                continue
            if kind == "end":
                self._end(step.end or "completed")
                return

    def _condition(self, name: str, frame: dict[str, Any]) -> bool:
        negate = name.startswith("not ")
        name = name.removeprefix("not ")
        value = {
            "needs_confirmation": bool(frame.get("confirm")),
            "collecting": self.facts.collecting,
            "not_collecting": not self.facts.collecting,
            "outbound": self.state.kind == "outbound",
            "voice": self.state.channel == "voice",
            "channel_unknown": not frame.get("args", {}).get("channels"),
            "vulnerable": bool(frame.get("args", {}).get("vulnerable")),
            "ends_channel": False,
        }[name]
        return not value if negate else value

    def _ask_values(self, act: str, frame: dict[str, Any]) -> dict[str, Any]:
        slots = self.state.slots
        values: dict[str, Any] = {}
        if "amount" in slots:
            values["amount"] = Decimal(slots["amount"])
        if "date" in slots:
            values["date"] = cn_date(date.fromisoformat(slots["date"]))
        for key in ("count", "days"):
            if key in slots:
                values[key] = slots[key]
        for key in ("per", "waiver", "after_waiver"):
            if key in slots:
                values[key] = Decimal(slots[key])
        if "limit_date" in slots:
            values["limit_date"] = cn_date(date.fromisoformat(slots["limit_date"]))
        if act == "promise.ask_date" and slots.get("date_hint") == "payday":
            values["variant"] = "payday"
        elif frame.pop("retry", False) and act in ("promise.ask_date", "promise.ask_amount"):
            values["variant"] = "again"
        if act == "cease.confirm":
            values["variant"] = "channel"
        return values

    # -- checks ------------------------------------------------------------------------------
    def _check(self, frame: dict[str, Any]) -> bool:
        """Promise terms inside the strategy's limits; otherwise the nearest offer inside them."""
        limits = self.segment.promise
        slots = self.state.slots
        today = self.facts.today
        latest = today + timedelta(days=limits.max_days_ahead)
        day = date.fromisoformat(slots["date"])
        amount = Decimal(slots["amount"])
        base = self.facts.promise_base
        if day < today:
            slots.pop("date", None)
            frame["step"] = 0
            self._ask("promise.date_past")
            return False
        counter: dict[str, str] = {}
        if day > latest:
            counter["date"] = latest.isoformat()
        minimum = cents(base * Decimal(str(limits.min_amount_pct)) / 100) if base > 0 else ZERO
        if base > 0 and amount < minimum:
            counter["amount"] = str(minimum)
        if not counter:
            return True
        frame.pop("affirmed", None)
        frame["counter"] = counter
        times = self.state.bump("counters")
        if times >= 3:
            self._handoff_action("promise beyond the agent's authority", variant="promise")
            return False
        values = {"limit_date": cn_date(date.fromisoformat(counter.get("date", slots["date"]))),
                  "min_amount": Decimal(counter.get("amount", slots["amount"])),
                  "amount": Decimal(counter.get("amount", slots["amount"])),
                  "date": cn_date(date.fromisoformat(counter.get("date", slots["date"])))}
        variant = "both" if len(counter) == 2 else ("date" if "date" in counter else "amount")
        if times == 2:
            variant += "_again"
        self._ask("promise.counter", variant=variant, **values)
        return False

    # -- actions ----------------------------------------------------------------------------------
    def _default_amount_action(self, frame: dict[str, Any]) -> str:
        """"我明天还" promises what is due; the read-back states the figure, so the borrower
        corrects it there if they meant less."""
        slots = self.state.slots
        if "amount" not in slots and "date" in slots and self.facts.promise_base > 0:
            slots["amount"] = str(cents(self.facts.promise_base))
            self.d.slots_set["amount"] = slots["amount"]
        if (not self.facts.collecting and self.facts.next_due_date is None) or (
                not self.facts.collecting and "amount" not in slots and "date" not in slots):
            self._say("answer.balance", variant="nothing_due" if self.facts.next_due_date is None
                      else "current")
            return "done"
        return "next"

    def _record_promise_action(self, frame: dict[str, Any]) -> str:
        slots = self.state.slots
        amount, day = slots["amount"], slots["date"]
        live = self.state.promise
        if live is not None and live["amount"] == amount and live["date"] == day:
            return "next"
        self.d.effects.append(fx.RecordPromise(amount=amount, due_date=day, confirmed=False))
        if live is not None:
            self.state.bump("promises_cancelled")
        self.state.promise = {"amount": amount, "date": day, "confirmed": False}
        self.state.note_outcome("ptp")
        return "next"

    def _confirm_promise_action(self, frame: dict[str, Any]) -> str:
        if self.state.promise is not None and not self.state.promise.get("confirmed"):
            self.d.effects.append(fx.ConfirmPromise())
            self.state.promise["confirmed"] = True
        return "next"

    def _latest(self, days: int) -> date:
        return self.facts.today + timedelta(days=days)

    def _offer_extension_action(self, frame: dict[str, Any]) -> str:
        offers = self.segment.offers
        if offers.max_extension_days <= 0 or not self.facts.collecting:
            return self._beyond("extension")
        latest = self._latest(offers.max_extension_days)
        asked = self.state.slots.get("date")
        day = latest
        if asked and self.facts.today < date.fromisoformat(asked) <= latest:
            day = date.fromisoformat(asked)
        self.state.slots.update({"plan": "extension", "amount": str(cents(self.facts.total_due)),
                                 "date": day.isoformat(), "limit_date": day.isoformat(),
                                 "days": (day - self.facts.today).days})
        return "next"

    def _offer_installment_action(self, frame: dict[str, Any]) -> str:
        offers = self.segment.offers
        if offers.max_installments < 2 or not self.facts.collecting:
            return self._beyond("installment")
        wanted = int(self.state.slots.get("count") or offers.max_installments)
        count = max(2, min(wanted, offers.max_installments))
        per = cents(self.facts.total_due / count)
        first = self._latest(min(7, self.segment.promise.max_days_ahead or 7))
        self.state.slots.update({"plan": "installment", "amount": str(per), "per": str(per),
                                 "count": count, "date": first.isoformat()})
        return "next"

    def _offer_waiver_action(self, frame: dict[str, Any]) -> str:
        pct = Decimal(str(self.segment.offers.max_waiver_pct))
        waiver = cents(self.facts.penalty * pct / 100)
        if waiver <= 0 or not self.facts.collecting:
            return self._beyond("waiver")
        after = cents(self.facts.total_due - self.facts.penalty * pct / 100)
        day = self._latest(max(1, self.segment.promise.max_days_ahead))
        self.state.slots.update({"plan": "waiver", "amount": str(after), "date": day.isoformat(),
                                 "waiver": str(waiver), "after_waiver": str(after)})
        return "next"

    def _beyond(self, what: str) -> str:
        """Beyond the agent's authority: a human decides (never a refusal loop)."""
        if not self.facts.collecting:
            self._say("answer.balance", variant="nothing_due")
            return "done"
        self._handoff_action(f"{what} beyond the agent's authority", variant=what)
        return "wait"

    def _record_plan_action(self, frame: dict[str, Any]) -> str:
        slots = self.state.slots
        plan = slots.get("plan", frame["flow"])
        details = {k: slots[k] for k in ("count", "per", "waiver") if k in slots}
        if self.state.promise is not None:
            self.state.bump("promises_cancelled")
        self.d.effects.append(fx.RecordPromise(amount=slots["amount"], due_date=slots["date"],
                                               confirmed=True, plan=plan, details=details))
        self.state.promise = {"amount": slots["amount"], "date": slots["date"], "confirmed": True}
        if plan == "waiver":
            self._flag("waiver_request", f"penalty waiver {slots.get('waiver')}")
        self.state.note_outcome("ptp")
        self._say("plan.recorded", variant=plan, **self._ask_values("plan.recorded", frame))
        return "next"

    def _hardship_action(self, frame: dict[str, Any]) -> str:
        args = frame.get("args", {})
        self.state.ability = "hardship"
        self.d.effects.append(fx.SetAbility("hardship"))
        self._flag("hardship", str(args.get("reason", "")))
        self.state.note_outcome("hardship")
        if args.get("vulnerable"):
            self._say("hardship.vulnerable")
            self._flag("vulnerable")
            self.d.effects.append(fx.Restrict("vulnerable_hold", "all"))
            self.d.effects.append(fx.PauseLoan("vulnerable"))
            self._handoff_action("vulnerable borrower", variant="vulnerable")
            return "wait"
        offers = self.segment.offers
        if any(f["flow"] in NEGOTIATION for f in self.state.stack if f is not frame):
            self._say("hardship.ack", variant="short")
            return "next"
        self.state.stack.remove(frame)
        self._ask("hardship.ack", max_days=offers.max_extension_days,
                  max_count=offers.max_installments)
        return "wait"

    def _record_dispute_action(self, frame: dict[str, Any]) -> str:
        if "dispute" in self.state.flags:  # "是的 我不认这笔账": already recorded, not twice
            return "done"
        self._say("dispute.recorded")
        self._flag("dispute", frame.get("note", ""))
        self.d.effects.append(fx.Restrict("disputed", "all"))
        self.d.effects.append(fx.PauseLoan("disputed"))
        self.state.note_outcome("dispute")
        self.state.stack = [f for f in self.state.stack if f["flow"] not in NEGOTIATION]
        return "next"

    def _check_payment_action(self, frame: dict[str, Any]) -> str:
        recent = [p for p in self.facts.payments if (self.facts.today - p.paid_on).days <= 31]
        if recent:
            last = max(recent, key=lambda p: p.paid_on)
            self._say("claim_paid.found", paid_on=cn_date(last.paid_on), paid_amount=last.amount,
                      variant="still_due" if self.facts.total_due > 0 else "clear")
            if self.facts.total_due > 0:  # why it still shows overdue: what the payment covered
                self._say("answer.payment_history", variant="applied")
            if self.facts.total_due <= 0:
                self.state.note_outcome("paid")
            return "next"
        self._say("claim_paid.not_found")
        self._flag("payment_claim", "borrower says paid; no payment on record")
        self.d.effects.append(fx.PauseLoan("payment_claim"))
        self.state.note_outcome("dispute")
        self.state.stack = [f for f in self.state.stack if f["flow"] not in NEGOTIATION]
        return "next"

    def _record_cease_action(self, frame: dict[str, Any]) -> str:
        channels = list(frame.get("args", {}).get("channels") or [])
        if not channels:
            channels = [self.state.channel]
        if "all" in channels:
            channels = ["all"]
        for channel in channels:
            self.d.effects.append(fx.Restrict("cease_requested", channel))
        self._flag("cease_requested", ",".join(channels))
        self.state.note_outcome("cease")
        self._say("cease.recorded", ceased_channel="+".join(channels),
                  **({} if self.state.verified else {"variant": "unverified"}))
        if "all" in channels or self.state.channel in channels:
            self.state.end_after = "cease_requested"
        return "next"

    def _record_complaint_action(self, frame: dict[str, Any]) -> str:
        self._flag("complaint", frame.get("note", ""))
        return "next"

    def _record_callback_action(self, frame: dict[str, Any]) -> str:
        slot = self.state.slots.get("callback_time") or {}
        if not isinstance(slot, dict):
            slot = {"phrase": str(slot)}
        if not slot.get("date") and (slot.get("part") or slot.get("hour")):
            slot = {**slot, "date": self.facts.today.isoformat()}
        self.d.effects.append(fx.Callback(date=slot.get("date"), part=slot.get("part"),
                                          hour=slot.get("hour"), phrase=slot.get("phrase", "")))
        self._say("callback.recorded", callback_when=slot.get("phrase") or "稍后")
        self._end("callback", "callback")
        return "wait"

    def _handoff_action(self, note: str = "borrower asked for a human", say: bool = True,
                        variant: str | None = None) -> str:
        if say:
            self._say("handoff", **({"variant": variant} if variant else {}))
        self._flag("handoff", note)
        self.d.effects.append(fx.HandOff(note))
        self._end("handoff", "handoff")
        return "wait"

    def _third_party_action(self, frame: dict[str, Any]) -> str:
        """Someone else holds the phone: nothing disclosed, a call-back request to pass on.
        The line stays open: the borrower may come to the phone, or it is a wrong number."""
        self._say("third_party.message")
        self._flag("third_party", "someone else answered")
        self.state.note_outcome("third_party")
        self.state.bump("third_party")
        self.state.stack.remove(frame)
        return "wait"

    def _wrong_number_action(self, frame: dict[str, Any]) -> str:
        self._say("wrong_number.recorded")
        self._flag("wrong_party", "does not know the borrower")
        self.d.effects.append(fx.Restrict("wrong_number", "all"))
        self._end("wrong_party", "wrong_party")
        return "wait"

    def _refusal_action(self, frame: dict[str, Any]) -> str:
        self.state.note_outcome("refused")
        if self.state.bump("refusals") >= 2:
            self._say("refusal.end")
            self._end("refused")
            return "wait"
        self.state.stack.remove(frame)
        self._ask("refusal.consequences")
        return "wait"

    def _abuse_action(self, frame: dict[str, Any]) -> str:
        self._flag("abuse")
        if self.state.bump("abuse") >= 2:
            self._say("abuse.end")
            self._end("abuse", "abuse")
            return "wait"
        self._say("abuse.warn")
        return "next"

    def _goodbye_action(self) -> str:
        self._say("goodbye")
        self._end("completed")
        return "wait"

    # -- knowledge answers (digressions: the flow in progress resumes after) -------------------
    def _answer(self, command: Answer) -> None:
        f = self.facts
        topic = command.topic
        if topic == "balance":
            variant = "overdue" if f.total_due > 0 else (
                "current" if f.next_due_date else "nothing_due")
            self._say("answer.balance", variant=variant)
        elif topic == "due_date":
            variant = "overdue" if f.total_due > 0 else (
                "current" if f.next_due_date else "nothing_due")
            self._say("answer.due_date", variant=variant)
        elif topic == "payment_method":
            channel = command.args.get("channel")
            if channel and channel not in self.payment_channels:
                self._say("answer.payment_method", variant="not_official", asked_channel=channel)
            elif channel:
                self._say("answer.payment_method", variant="ok", asked_channel=channel)
            else:
                self._say("answer.payment_method")
        elif topic == "overdue_status":
            self._say("answer.overdue_status", variant="yes" if f.total_due > 0 else "no")
        elif topic == "payment_history":
            if f.payments:
                last = max(f.payments, key=lambda p: p.paid_on)
                self._say("answer.payment_history",
                          variant="still_due" if f.total_due > 0 else "clear",
                          paid_on=cn_date(last.paid_on), paid_amount=last.amount)
            else:
                self._say("answer.payment_history", variant="none")
        elif topic == "greeting":
            self._say("answer.greeting")
        elif topic == "early_settlement":
            self._say("answer.early_settlement")
        else:
            self._say(f"answer.{topic}")
