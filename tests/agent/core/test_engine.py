"""The conversation engine driven with typed commands (no model, no database)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from agent.config.settings import REPO_ROOT
from agent.core.commands import (
    Affirm,
    Answer,
    Cancel,
    Clarify,
    Command,
    Deny,
    Goodbye,
    SetSlot,
    StartFlow,
)
from agent.core.engine import ENDED, VERIFY, Engine, LoanFacts, PaymentFact, new_state
from agent.strategy import StrategyBook
from tests.fakes.store import MemoryStore

STRATEGY = StrategyBook(Path(REPO_ROOT / "strategies")).strategies["standard@3"]
TODAY = date(2026, 12, 3)


def facts(**overrides: object) -> LoanFacts:
    base = dict(borrower_name="李娜", dpd=13, bucket="M1", overdue=Decimal("1150"),
                penalty=Decimal("7.475"), total_due=Decimal("1157.475"),
                outstanding=Decimal("7000"), settle=Decimal("7157.475"),
                next_due_date=date(2026, 12, 20), next_due_amount=Decimal("1150"),
                oldest_due_date=date(2026, 11, 20), annual_rate=Decimal("0.18"),
                penalty_rate_daily=Decimal("0.0005"), today=TODAY)
    base.update(overrides)
    return LoanFacts(**base)  # type: ignore[arg-type]


class Convo:
    def __init__(self, kind: str = "inbound", channel: str = "chat",
                 loan: LoanFacts | None = None) -> None:
        self.state = new_state(kind, channel)
        self.facts = loan or facts()
        self.store = MemoryStore()
        Engine(self.state, self.facts, STRATEGY, STRATEGY.flow_book).opening()

    def say(self, *commands: Command) -> list[str]:
        engine = Engine(self.state, self.facts, STRATEGY, STRATEGY.flow_book)
        decision = engine.step(list(commands))
        self.store.apply(decision.effects)
        self.last = decision
        return decision.act_names


def test_promise_is_stored_at_once_then_confirmed_by_the_readback() -> None:
    c = Convo()
    acts = c.say(SetSlot("date", "2026-12-07"), SetSlot("amount", "800"), StartFlow("promise"))
    assert acts == ["promise.readback"]
    assert c.store.live_promise == {"amount": "800.00", "date": "2026-12-07",
                                    "confirmed": False, "status": "pending",
                                    "plan": "promise"}
    assert c.say(Affirm()) == ["promise.recorded", "anything_else"]
    assert c.store.live_promise is not None and c.store.live_promise["confirmed"]


def test_date_only_promise_means_what_is_due_now_not_the_payoff() -> None:
    c = Convo()
    c.say(SetSlot("date", "2026-12-04"), StartFlow("promise"))
    assert c.store.live_promise is not None
    assert c.store.live_promise["amount"] == "1157.48"  # total_due rounded once, half up


def test_half_is_resolved_against_the_position_and_rounded_once() -> None:
    c = Convo()
    c.say(SetSlot("amount", "half"), SetSlot("date", "2026-12-04"), StartFlow("promise"))
    assert c.store.live_promise is not None
    assert c.store.live_promise["amount"] == "578.74"  # 1157.475 / 2 = 578.7375


def test_out_of_policy_date_gets_the_nearest_offer_then_a_human() -> None:
    c = Convo()
    assert c.say(SetSlot("date", "2026-12-31"), StartFlow("promise")) == ["promise.counter"]
    assert c.last.acts[0][1]["variant"] == "date"
    assert c.say(Affirm(), SetSlot("date", "2026-12-31")) == ["promise.counter"]
    assert c.last.acts[0][1]["variant"] == "date_again"
    assert c.say(SetSlot("date", "2026-12-31")) == ["handoff"]
    assert c.state.phase == ENDED and "handoff" in c.store.flags


def test_accepting_the_counter_reads_it_back() -> None:
    c = Convo()
    c.say(SetSlot("date", "2026-12-31"), StartFlow("promise"))
    assert c.say(Affirm()) == ["promise.readback"]
    assert c.store.live_promise is not None and c.store.live_promise["date"] == "2026-12-10"


def test_change_of_mind_cancels_the_earlier_promise() -> None:
    c = Convo()
    c.say(SetSlot("date", "2026-12-04"), StartFlow("promise"))
    assert c.say(Deny(slot="date")) == ["promise.ask_date"]
    assert c.say(SetSlot("date", "2026-12-05")) == ["promise.readback"]
    assert [p["status"] for p in c.store.promises] == ["cancelled", "pending"]


def test_question_mid_promise_is_answered_and_the_promise_resumes() -> None:
    c = Convo()
    c.say(SetSlot("amount", "500"), StartFlow("promise"))
    assert c.say(Answer("fees")) == ["answer.fees", "promise.ask_date"]
    assert c.say(SetSlot("date", "2026-12-04")) == ["promise.readback"]


def test_yes_after_the_readback_with_a_tweak_is_a_yes() -> None:
    c = Convo()
    c.say(SetSlot("date", "2026-12-07"), StartFlow("promise"))
    assert c.say(Affirm(), SetSlot("date", "2026-12-03")) == ["promise.recorded",
                                                               "anything_else"]
    assert c.store.live_promise is not None and c.store.live_promise["confirmed"]


def test_cease_is_per_channel_and_keeps_the_chat_open() -> None:
    c = Convo()
    acts = c.say(StartFlow("cease", args={"channels": ["voice"]}),
                 SetSlot("date", "2026-12-07"), StartFlow("promise"))
    assert acts == ["cease.recorded", "promise.readback"]
    assert c.store.ceased("voice") and not c.store.ceased("chat") and not c.store.ceased("sms")
    assert c.state.phase != ENDED


def test_unsure_cease_and_dispute_are_asked_before_acting() -> None:
    c = Convo()
    assert c.say(StartFlow("cease", confirm=True)) == ["cease.confirm"]
    assert c.store.restrictions == []
    assert c.say(Deny()) == ["cancelled", "anything_else"]
    assert c.say(Clarify("dispute_unsure", candidate="dispute")) == ["dispute.confirm"]
    assert c.store.paused is None
    assert c.say(Affirm()) == ["dispute.recorded", "anything_else"]
    assert c.store.paused == "disputed" and ("disputed", "all") in c.store.restrictions


def test_claim_of_payment_is_checked_against_the_records() -> None:
    c = Convo(loan=facts(total_due=Decimal(0), payments=(PaymentFact(date(2026, 12, 2),
                                                                       Decimal("1150")),)))
    assert c.say(StartFlow("claim_paid"))[0] == "claim_paid.found"
    assert c.store.paused is None
    c = Convo()
    assert c.say(StartFlow("claim_paid"))[0] == "claim_paid.not_found"
    assert c.store.paused == "payment_claim"


def test_third_party_learns_nothing_and_is_not_a_wrong_number() -> None:
    c = Convo(kind="outbound", channel="voice")
    assert c.state.phase == VERIFY
    assert c.say(StartFlow("third_party")) == ["third_party.message"]
    assert not any(r == "wrong_number" for r, _ in c.store.restrictions)
    c = Convo(kind="outbound", channel="voice")
    assert c.say(StartFlow("wrong_number")) == ["wrong_number.recorded"]
    assert ("wrong_number", "all") in c.store.restrictions


def test_nothing_about_the_debt_before_identity() -> None:
    c = Convo(kind="outbound", channel="voice")
    assert c.say(Answer("balance")) == ["verify.ask"]
    assert c.say(SetSlot("identity", "self"), Affirm()) == ["disclose.debt"]


def test_cannot_handle_rephrases_once_then_offers_a_human() -> None:
    c = Convo()
    assert c.say(Clarify("unclear")) == ["clarify"]
    assert c.say(Clarify("unclear")) == ["clarify.offer_human"]
    assert c.say(Affirm()) == ["handoff"]


def test_goodbye_is_not_a_yes() -> None:
    c = Convo()
    c.say(Answer("due_date"))
    assert c.state.expect == "anything_else"
    assert c.say(Goodbye()) == ["goodbye"] and c.state.phase == ENDED


def test_cancel_drops_the_negotiation() -> None:
    c = Convo()
    c.say(SetSlot("amount", "500"), StartFlow("promise"))
    assert c.say(Cancel()) == ["cancelled", "anything_else"]
    assert c.state.stack == []


@pytest.mark.parametrize("flow,act", [("extension", "offer.extension"),
                                      ("installment", "offer.installment")])
def test_plans_within_limits_are_offered_and_recorded(flow: str, act: str) -> None:
    c = Convo()
    assert c.say(StartFlow(flow)) == [act]
    assert c.say(Affirm()) == ["plan.recorded", "anything_else"]
    promise = c.store.live_promise
    assert promise is not None and promise["plan"] == flow and promise["confirmed"]


def test_waiver_beyond_authority_goes_to_a_human() -> None:
    c = Convo()  # early segment: no waiver
    assert c.say(StartFlow("waiver")) == ["handoff"]
    assert "handoff" in c.store.flags


def test_vulnerable_statement_pauses_and_hands_off() -> None:
    c = Convo()
    acts = c.say(StartFlow("hardship", args={"reason": "illness", "vulnerable": True}))
    assert acts == ["hardship.vulnerable", "handoff"]
    assert c.store.paused == "vulnerable" and ("vulnerable_hold", "all") in c.store.restrictions
