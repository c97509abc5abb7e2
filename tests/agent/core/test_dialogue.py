"""The dialogue state machine, driven directly with labelled turns (no model, no database)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from agent.config.settings import REPO_ROOT
from agent.core.dialogue import ENDED, VERIFY, DialogueMachine, LoanFacts, RecentPayment, new_state
from agent.core.labels import Entity, Intent, NluResult, Willingness
from agent.strategy import StrategyBook

STRATEGY = StrategyBook(Path(REPO_ROOT / "strategies")).strategies["standard@3"]
TODAY = date(2026, 11, 25)


def facts(**overrides: object) -> LoanFacts:
    base = dict(borrower_name="张伟", dpd=47, bucket="M2", overdue=Decimal("2360"),
                penalty=Decimal("41.3"), total_due=Decimal("2401.3"),
                outstanding=Decimal("10000"), settle=Decimal("10041.3"),
                next_due_date=date(2026, 12, 10), next_due_amount=Decimal("1180"),
                oldest_due_date=date(2026, 10, 9), annual_rate=Decimal("0.18"),
                penalty_rate_daily=Decimal("0.0005"), today=TODAY)
    base.update(overrides)
    return LoanFacts(**base)  # type: ignore[arg-type]


def nlu(intent: Intent, *entities: Entity, willingness: Willingness = Willingness.NONE) -> NluResult:
    return NluResult(intent=intent, intent_confidence=0.9, willingness=willingness,
                     willingness_confidence=0.9, entities=tuple(entities))


def amount(value: float) -> Entity:
    return Entity("amount", str(value), 0, 1, value)


def day(value: str) -> Entity:
    return Entity("date", value, 0, 1, value)


def acts(decision) -> list[str]:  # type: ignore[no-untyped-def]
    return [a for a, _ in decision.acts]


def run(kind: str = "outbound", channel: str = "chat", loan: LoanFacts | None = None):  # type: ignore[no-untyped-def]
    state = new_state(kind, channel)
    machine = DialogueMachine(state, loan or facts(), STRATEGY)
    return state, machine


def test_outbound_verifies_before_disclosing_anything() -> None:
    state, machine = run()
    assert acts(machine.opening()) == ["opening_outbound"]
    assert state.phase == VERIFY
    # A question before confirmation gets the identity question again, no debt detail.
    assert acts(machine.step(nlu(Intent.ASK_BALANCE), "欠多少")) == ["verify_again"]
    decision = machine.step(nlu(Intent.CONFIRM_IDENTITY), "是我")
    assert acts(decision) == ["disclose_debt"] and state.verified


def test_deny_at_verification_is_wrong_party_ending_without_disclosure() -> None:
    state, machine = run()
    machine.opening()
    decision = machine.step(nlu(Intent.DENY), "不是")
    assert acts(decision) == ["wrong_party_goodbye"]
    assert decision.end_reason == "wrong_party" and state.outcome == "wrong_party"
    kinds = {(e.kind, e.data.get("kind")) for e in decision.effects}
    assert ("restrict", "wrong_number") in kinds and ("flag", "wrong_party") in kinds


def test_promise_collects_missing_slots_reads_back_and_records() -> None:
    state, machine = run(kind="inbound")
    decision = machine.step(nlu(Intent.PROMISE_TO_PAY, willingness=Willingness.MEDIUM), "我会还的")
    assert acts(decision) == ["ptp_ask_amount"]
    decision = machine.step(nlu(Intent.OTHER, amount(3000)), "三千")
    assert acts(decision) == ["ptp_ask_date"]
    decision = machine.step(nlu(Intent.OTHER, day("2026-11-26")), "明天")
    assert acts(decision) == ["ptp_readback"]
    assert decision.acts[0][1] == {"amount": Decimal("3000"), "date": "11月26日"}
    decision = machine.step(nlu(Intent.AFFIRM), "对")
    promise = [e for e in decision.effects if e.kind == "promise"][0]
    assert promise.data["amount"] == "3000" and promise.data["due_date"] == "2026-11-26"
    assert state.outcome == "ptp" and "ptp_recorded" in acts(decision)


def test_promise_beyond_strategy_limit_is_countered() -> None:
    _, machine = run(kind="inbound")
    decision = machine.step(nlu(Intent.PROMISE_TO_PAY, amount(2401.3), day("2027-01-31")),
                            "明年一月底还")
    assert acts(decision) == ["ptp_date_too_late"]
    # standard@3 mid segment: at most 10 days ahead.
    assert decision.acts[0][1]["limit_date"] == "12月5日"


def test_promise_below_minimum_amount_is_countered() -> None:
    _, machine = run(kind="inbound")
    decision = machine.step(nlu(Intent.PROMISE_TO_PAY, amount(100), day("2026-11-26")), "先还100")
    assert acts(decision) == ["ptp_amount_too_low"]
    assert decision.acts[0][1]["min_amount"] == Decimal("720.39")


def test_installment_offer_within_limits_then_recorded() -> None:
    state, machine = run(kind="inbound")
    decision = machine.step(nlu(Intent.REQUEST_INSTALLMENT), "能分12期吗")
    values = decision.acts[0][1]
    assert acts(decision) == ["installment_offer"] and values["count"] == 6  # mid: max 6
    decision = machine.step(nlu(Intent.AFFIRM), "可以")
    promise = [e for e in decision.effects if e.kind == "promise"][0]
    assert promise.data["kind"] == "installment" and promise.data["plan"]["count"] == 6


def test_waiver_within_authority_and_handoff_beyond() -> None:
    _, machine = run(kind="inbound")
    decision = machine.step(nlu(Intent.REQUEST_WAIVER), "罚息能免吗")
    assert acts(decision) == ["waiver_offer"] and decision.acts[0][1]["waiver"] == Decimal("4.13")
    _, early = run(kind="inbound", loan=facts(bucket="M1", dpd=10))
    decision = early.step(nlu(Intent.REQUEST_WAIVER), "罚息能免吗")
    assert acts(decision) == ["waiver_handoff"] and decision.end_reason == "handoff"


def test_hardship_sets_ability_and_offers_options_vulnerable_hands_off() -> None:
    state, machine = run(kind="inbound")
    reason = Entity("hardship_reason", "失业", 1, 3, "unemployment")
    decision = machine.step(nlu(Intent.HARDSHIP, reason), "我失业了")
    assert acts(decision) == ["hardship_ack"] and state.ability == "hardship"
    assert decision.acts[0][1] == {"max_days": 30, "max_count": 12}
    state, machine = run(kind="inbound")
    decision = machine.step(nlu(Intent.HARDSHIP), "我在住院做手术")
    assert "hardship_vulnerable" in acts(decision) and decision.end_reason == "handoff"
    assert any(e.data.get("kind") == "vulnerable_hold" for e in decision.effects)


def test_dispute_pauses_and_flags() -> None:
    state, machine = run(kind="inbound")
    decision = machine.step(nlu(Intent.DISPUTE), "这笔钱不是我借的")
    kinds = [e.kind for e in decision.effects]
    assert "pause_loan" in kinds and state.outcome == "dispute" and "dispute" in state.flags


def test_claim_paid_checks_payments() -> None:
    paid = facts(recent_payments=(RecentPayment(date(2026, 11, 24), Decimal("2401.3"), "alipay"),),
                 total_due=Decimal(0))
    _, machine = run(kind="inbound", loan=paid)
    assert acts(machine.step(nlu(Intent.CLAIM_PAID), "我昨天还了")) == ["claim_paid_found"]
    state, machine = run(kind="inbound")
    decision = machine.step(nlu(Intent.CLAIM_PAID), "我昨天还了")
    assert acts(decision) == ["claim_paid_not_found"] and "payment_claim" in state.flags


def test_cease_request_is_per_channel_unless_all() -> None:
    state, machine = run(kind="inbound")
    decision = machine.step(nlu(Intent.STOP_CONTACT), "别再发消息了")
    restrict = [e for e in decision.effects if e.kind == "restrict"][0]
    assert restrict.data == {"kind": "cease_requested", "channel": "chat"}
    assert decision.end_reason == "cease_requested" and state.phase == ENDED
    _, machine = run(kind="inbound")
    decision = machine.step(nlu(Intent.STOP_CONTACT), "以后任何方式都别联系我")
    assert [e for e in decision.effects if e.kind == "restrict"][0].data["channel"] == "all"


def test_abuse_warns_once_then_ends() -> None:
    state, machine = run(kind="inbound")
    assert acts(machine.step(nlu(Intent.ABUSE), "滚")) == ["abuse_warn"]
    decision = machine.step(nlu(Intent.ABUSE), "滚蛋")
    assert acts(decision) == ["abuse_end"] and state.outcome == "abuse"


def test_unclear_clarifies_then_falls_back_to_human() -> None:
    _, machine = run(kind="inbound")
    assert acts(machine.step(nlu(Intent.OTHER), "啊？")) == ["clarify"]
    assert acts(machine.step(nlu(Intent.OTHER), "嗯？")) == ["clarify"]
    decision = machine.step(nlu(Intent.OTHER), "什么")
    assert acts(decision) == ["fallback_human"] and decision.end_reason == "handoff"


def test_refusal_twice_ends_refused() -> None:
    state, machine = run(kind="inbound")
    assert acts(machine.step(nlu(Intent.REFUSE_TO_PAY), "不还")) == ["refuse_first"]
    decision = machine.step(nlu(Intent.REFUSE_TO_PAY), "就是不还")
    assert acts(decision) == ["refuse_end"] and state.outcome == "refused"


def test_callback_with_time_is_recorded() -> None:
    state, machine = run()
    machine.opening()
    decision = machine.step(nlu(Intent.CALLBACK_LATER, day("2026-11-26")), "明天下午再打")
    callback = [e for e in decision.effects if e.kind == "callback"][0]
    assert callback.data["date"] == "2026-11-26" and state.outcome == "callback"


@pytest.mark.parametrize("intent,act", [
    (Intent.ASK_BALANCE, "balance_overdue"), (Intent.ASK_DUE_DATE, "due_date_overdue"),
    (Intent.ASK_FEES, "fees"), (Intent.ASK_EARLY_SETTLEMENT, "early_settlement"),
    (Intent.ASK_CREDIT_IMPACT, "credit_impact"), (Intent.ASK_PAYMENT_METHOD, "payment_methods"),
])
def test_service_questions_answered(intent: Intent, act: str) -> None:
    _, machine = run(kind="inbound")
    assert acts(machine.step(nlu(intent), "?"))[0] == act


def test_current_loan_balance_is_next_installment() -> None:
    current = facts(dpd=0, bucket="current", overdue=Decimal(0), penalty=Decimal(0),
                    total_due=Decimal(0))
    _, machine = run(kind="inbound", loan=current)
    assert acts(machine.step(nlu(Intent.ASK_BALANCE), "?")) == ["balance_current"]


def test_bare_number_answers_how_much() -> None:
    _, machine = run(kind="inbound")
    machine.step(nlu(Intent.PROMISE_TO_PAY, day("2026-11-27")), "后天还")
    decision = machine.step(nlu(Intent.OTHER), "2000")
    assert acts(decision) == ["ptp_readback"]
    assert decision.acts[0][1]["amount"] == Decimal("2000")


def test_callback_keeps_the_whole_time_phrase() -> None:
    _, machine = run()
    machine.opening()
    machine.step(nlu(Intent.CALLBACK_LATER), "在开会 晚点再说")
    decision = machine.step(nlu(Intent.OTHER), "下午三点吧")
    assert decision.acts[0] == ("callback_ack", {"callback_when": "下午三点"})


def test_half_of_the_balance_is_an_amount() -> None:
    _, machine = run(kind="inbound")
    decision = machine.step(nlu(Intent.PROMISE_TO_PAY, day("2026-12-02")), "下周三先还一半行吗")
    assert acts(decision) == ["ptp_readback"]
    assert decision.acts[0][1]["amount"] == Decimal("1200.65")  # half of 2401.30
