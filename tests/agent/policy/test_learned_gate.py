"""The shipped gate (rules + learned classifier) on lines no rule or model was tuned on."""

from __future__ import annotations

from typing import Any

import pytest

from agent.policy.content import UtteranceContext, check_utterance, speaks_to_someone_else
from agent.policy.profile import load_profile
from nlp.compliance import DATA_DIR, load_corpus, shared_classifier

pytestmark = [pytest.mark.model]
CN = load_profile("cn")
VB = UtteranceContext(identity_verified=True, addressee="borrower")
SISTER = UtteranceContext(identity_verified=False, addressee="third_party")


@pytest.fixture(scope="module")
def model() -> Any:
    loaded = shared_classifier()
    if loaded is None:
        pytest.skip("learned compliance model or E5 encoder not installed")
    return loaded


def test_held_out_writer_caught_and_lawful_lines_pass(model: Any) -> None:
    path = DATA_DIR / "writer_d.jsonl"
    if not path.exists():
        pytest.skip("no held-out corpus")
    lines = load_corpus([path])
    caught = lawful_blocked = violations = lawful = 0
    for line in lines:
        ctx = VB if line.addressee == "borrower" else UtteranceContext(
            identity_verified=False, addressee=line.addressee)  # type: ignore[arg-type]
        blocked = not check_utterance(line.text, CN, ctx, model).allowed
        if line.rules:
            violations += 1
            caught += blocked
        else:
            lawful += 1
            lawful_blocked += blocked
    assert caught / violations >= 0.80, f"caught {caught}/{violations}"
    assert lawful_blocked / lawful <= 0.05, f"over-blocked {lawful_blocked}/{lawful}"


def test_the_same_debt_fact_is_lawful_to_the_borrower_and_not_to_his_sister(model: Any) -> None:
    line = "这笔借款已经逾期二十三天了，目前应还两千六百元。"
    assert check_utterance(line, CN, VB, model).allowed
    verdict = check_utterance(line, CN, SISTER, model)
    assert verdict.rules == ["third_party_disclosure"] and verdict.violations[0].citation


def test_the_text_itself_shows_who_is_listening(model: Any) -> None:
    line = "您是他妹妹吧？那麻烦您提醒他，他那笔八千块拖了快两个月了。"
    assert speaks_to_someone_else(line)
    assert "third_party_disclosure" in check_utterance(line, CN, VB, model).rules
    assert check_utterance("麻烦您转告他给我们回个电话，谢谢。", CN, VB, model).allowed


def test_learned_hits_name_a_rule_and_its_citation(model: Any) -> None:
    verdict = check_utterance("你要是还装死，下礼拜我们的人就在你公司楼下等你下班。", CN, VB, model)
    assert not verdict.allowed
    assert all(v.citation for v in verdict.violations)
