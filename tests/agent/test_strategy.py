"""Strategy files: validation with clear errors, routing, reload, and compliant wording."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
import yaml

from agent.config.settings import REPO_ROOT
from agent.policy.content import UtteranceContext, check_utterance
from agent.policy.profile import load_profile
from agent.strategy import (
    ACTS,
    PLACEHOLDERS,
    StrategyBook,
    StrategyError,
    arm_for,
    check_directory,
    load_strategy_file,
)

SOURCE = REPO_ROOT / "strategies"


@pytest.fixture
def strategies_dir(tmp_path: Path) -> Path:
    target = tmp_path / "strategies"
    shutil.copytree(SOURCE, target)
    return target


def _edit(path: Path, change) -> None:  # type: ignore[no-untyped-def]
    data = yaml.safe_load(path.read_text("utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")


def test_shipped_strategies_are_valid() -> None:
    assert check_directory(SOURCE) == []
    book = StrategyBook(SOURCE)
    assert book.champion == "standard@3" and book.challenger == "gentle@1"


@pytest.mark.parametrize("change,expected", [
    (lambda d: d.pop("version"), "standard.yaml: version: Field required"),
    (lambda d: d["segments"][0]["when"].update(buckets=["M9"]), "unknown bucket 'M9'"),
    (lambda d: d["segments"][0]["offers"].update(max_waiver_pct=150), "max_waiver_pct"),
    (lambda d: d["templates"].pop("promise.readback"), "missing act 'promise.readback'"),
    (lambda d: d["templates"].update(made_up=["x"]), "unknown act 'made_up'"),
    (lambda d: d["templates"]["handoff"].append("转给{nobody}"), "unknown placeholder {nobody}"),
    (lambda d: d["segments"][0]["channels"].update(fax={"cadence_days": 1, "max_per_day": 1}),
     "unknown channel 'fax'"),
    (lambda d: d["segments"][1].update(id=d["segments"][0]["id"]), "duplicate segment id"),
])
def test_broken_strategy_names_file_and_key(strategies_dir: Path, change, expected: str) -> None:  # type: ignore[no-untyped-def]
    _edit(strategies_dir / "standard.yaml", change)
    with pytest.raises(StrategyError, match="standard.yaml") as info:
        load_strategy_file(strategies_dir / "standard.yaml")
    assert expected in str(info.value)
    assert any(expected in p for p in check_directory(strategies_dir))


def test_broken_flow_names_file_and_key(strategies_dir: Path) -> None:
    path = strategies_dir / "flows" / "core.yaml"
    _edit(path, lambda d: next(step for step in d["flows"]["promise"]["steps"]
                               if "collect" in step).update(collect="shoe_size"))
    problems = check_directory(strategies_dir)
    assert problems and "flows/core.yaml" in problems[0] and "shoe_size" in problems[0]


def test_strategy_may_override_a_flow_step(strategies_dir: Path) -> None:
    path = strategies_dir / "gentle.yaml"
    _edit(path, lambda d: d.update(flows={"refusal": {"steps": [{"action": "handoff"}]}}))
    strategy = load_strategy_file(path)
    assert strategy.flows["refusal"].steps[0].action == "handoff"
    _edit(path, lambda d: d.update(flows={"refusal": {"steps": [{"say": "no.such.act"}]}}))
    with pytest.raises(StrategyError, match="gentle.yaml") as info:
        load_strategy_file(path)
    assert "no.such.act" in str(info.value)


def test_invalid_yaml_and_unknown_champion(strategies_dir: Path) -> None:
    (strategies_dir / "gentle.yaml").write_text("name: [unclosed", "utf-8")
    assert "not valid YAML" in check_directory(strategies_dir)[0]
    shutil.copy(SOURCE / "gentle.yaml", strategies_dir / "gentle.yaml")
    _edit(strategies_dir / "routing.yaml", lambda d: d.update(champion="nope@1"))
    with pytest.raises(StrategyError, match="champion 'nope@1' is not defined"):
        StrategyBook(strategies_dir)


def test_champion_challenger_split_is_stable_and_near_share() -> None:
    arms = [arm_for(f"B{i:06d}", 0.2) for i in range(5000)]
    assert arms == [arm_for(f"B{i:06d}", 0.2) for i in range(5000)]
    assert 0.17 < arms.count("challenger") / len(arms) < 0.23
    book = StrategyBook(SOURCE)
    assert {book.for_borrower(f"B{i}").ref for i in range(200)} == {"standard@3", "gentle@1"}


def test_reload_without_restart_keeps_last_good_on_broken_edit(strategies_dir: Path) -> None:
    book = StrategyBook(strategies_dir, check_every_s=0)
    path = strategies_dir / "standard.yaml"
    _edit(path, lambda d: d["segments"][3]["offers"].update(max_installments=9))
    os.utime(path, (time.time() + 5, time.time() + 5))
    book.refresh()
    assert book.strategies["standard@3"].segment_for("M2").offers.max_installments == 9
    path.write_text("broken: [", "utf-8")
    os.utime(path, (time.time() + 10, time.time() + 10))
    book.refresh()  # a broken edit does not take the service down
    assert book.strategies["standard@3"].segment_for("M2").offers.max_installments == 9


SAMPLE = {name: "1" for name in PLACEHOLDERS} | {
    "lender": "回款消费金融", "masked_name": "张*", "name": "张伟", "channels": "支付宝、微信",
    "channel_name": "支付宝", "date": "11月26日", "limit_date": "12月2日", "paid_on": "11月24日",
    "next_due_date": "12月10日", "oldest_due_date": "10月10日", "callback_when": "明天下午",
    "hotline": "400-800-1234", "remaining_note": "目前仍需还款1901.3元。",
}
BEFORE_VERIFICATION = {"opening_outbound", "opening_outbound_voice", "verify.ask",
                       "verify.ask:denied",
                       "wrong_number.recorded", "third_party.message", "goodbye",
                       "cease.recorded:unverified", "callback.ask_time", "callback.recorded",
                       "answer.robot", "silence_goodbye", "reprompt"}


@pytest.mark.parametrize("ref", ["standard@3", "gentle@1"])
def test_every_template_variant_passes_the_content_rules(ref: str) -> None:
    """No agent utterance the strategies can produce breaks a content rule, in its context."""
    profile = load_profile("cn")
    strategy = StrategyBook(SOURCE).strategies[ref]
    for act in ACTS:
        for variant in strategy.templates[act]:
            unverified = act in BEFORE_VERIFICATION
            ctx = UtteranceContext(identity_verified=not unverified,
                                   addressee="unknown" if unverified else "borrower",
                                   is_opening=act.startswith("opening"),
                                   channel="voice" if act.endswith("voice") else "chat")
            verdict = check_utterance(variant.format_map(SAMPLE), profile, ctx)
            assert verdict.allowed, (act, variant, verdict.to_dict())
