"""Profiles are data: catalogue ids, defaults, status labels, overrides and clear errors."""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.policy.catalogue import list_rules, rule_ids
from agent.policy.profile import PROFILE_DIR, ProfileError, load_profile

Edit = Callable[[str], str]

POLICY_DIR = Path(__file__).resolve().parents[3] / "agent" / "policy"

CN_IDS = {
    # §1 contact (and mixed) rules
    "quiet_hours", "quiet_hours_strict", "daily_conversation_cap", "daily_attempt_cap",
    "third_party_gate", "contact_opted_out", "unrelated_party", "wrong_number",
    "cease_requested", "disputed", "paid", "promise_pending", "vulnerable_hold",
    "missing_identification", "missing_ai_disclosure", "pii_masking", "recording_retention",
    # §2 content rules
    "threat", "insult", "false_legal_claim", "impersonation", "third_party_disclosure",
    "exposure_threat", "induce_illegal_funding", "illegal_debt",
}  # fmt: skip
US_IDS = {
    "quiet_hours", "inconvenient_time_place", "attorney_represented", "call_frequency_7in7",
    "cease_requested", "medium_opt_out", "third_party_disclosure", "location_inquiry",
    "wrong_number", "missing_identification", "validation_notice", "disputed", "threat",
    "insult", "false_legal_claim", "impersonation", "time_barred", "deceased",
    "ai_voice_consent", "missing_ai_disclosure", "record_retention", "paid",
    "promise_pending", "state_overlay",
}  # fmt: skip
CONTACT_PLAN_REASONS = {
    "quiet_hours", "daily_attempt_cap", "cease_requested", "disputed", "wrong_number",
    "promise_pending", "paid",
}  # fmt: skip


def test_cn_has_every_catalogue_rule() -> None:
    ids = {r.id for r in load_profile("cn").rules}
    assert CN_IDS <= ids
    assert CONTACT_PLAN_REASONS <= ids


def test_us_has_every_catalogue_rule() -> None:
    ids = {r.id for r in load_profile("us").rules}
    assert US_IDS <= ids


@pytest.mark.parametrize("name", ["cn", "us"])
def test_every_rule_has_citation_status_and_kind(name: str) -> None:
    prof = load_profile(name)
    for r in prof.rules:
        assert r.citation.strip() and r.requires.strip(), r.id
        assert r.status and set(r.status) <= {"LAW", "STD", "SRO", "CONV", "DERIVED"}, r.id
        assert r.kind in ("contact", "content", "contact+content"), r.id
        if r.checks_content:
            assert r.message and (r.match or r.detector), r.id


def test_cn_defaults_match_catalogue() -> None:
    prof = load_profile("cn")
    qh = prof.params("quiet_hours")
    assert (qh.start.isoformat("minutes"), qh.end.isoformat("minutes")) == ("22:00", "08:00")
    assert qh.start_inclusive is True
    strict = prof.params("quiet_hours_strict")
    assert strict.start.isoformat("minutes") == "21:00"
    assert prof.rule("quiet_hours_strict").enabled is False
    assert prof.params("daily_conversation_cap").max_per_day == 3
    assert prof.params("daily_attempt_cap").max_per_day == 6
    assert prof.params("promise_pending").reminder_days_before == 1
    assert prof.params("recording_retention").retention_years == 5
    assert prof.default_timezone == "Asia/Shanghai"


def test_us_defaults_match_catalogue() -> None:
    prof = load_profile("us")
    qh = prof.params("quiet_hours")
    assert (qh.start.isoformat("minutes"), qh.end.isoformat("minutes")) == ("21:00", "08:00")
    assert qh.start_inclusive is False  # "after 21:00" read literally
    p = prof.params("call_frequency_7in7")
    assert (p.max_attempts, p.window_days, p.conversation_cooldown_days) == (7, 7, 7)
    assert prof.rule("state_overlay").enabled is False
    assert prof.params("missing_ai_disclosure").require_on_opening is False


@pytest.mark.parametrize(
    ("rule_id", "label"),
    [
        ("quiet_hours", "STD+SRO [2nd]"),
        ("quiet_hours_strict", "CONV"),
        ("daily_conversation_cap", "STD+SRO [2nd]"),
        ("daily_attempt_cap", "SRO [2nd]"),
        ("contact_opted_out", "STD [2nd]"),
        ("unrelated_party", "LAW"),
        ("wrong_number", "DERIVED"),
        ("cease_requested", "DERIVED"),
        ("disputed", "LAW+CONV"),
        ("promise_pending", "CONV"),
        ("vulnerable_hold", "CONV"),
        ("pii_masking", "LAW+CONV"),
        ("threat", "LAW"),
        ("induce_illegal_funding", "SRO [2nd]"),
        ("illegal_debt", "LAW"),
    ],
)
def test_cn_status_labels(rule_id: str, label: str) -> None:
    assert load_profile("cn").rule(rule_id).status_label == label


def test_us_status_labels() -> None:
    prof = load_profile("us")
    assert prof.rule("call_frequency_7in7").status_label == "LAW"
    assert prof.rule("wrong_number").status_label == "DERIVED"
    assert prof.rule("missing_ai_disclosure").status_label == "DERIVED"
    assert "1006.14(b)(2)" in prof.rule("call_frequency_7in7").citation


# --------------------------------------------------------------------------- overrides


def test_profiles_are_cached_and_overrides_are_isolated() -> None:
    base = load_profile("cn")
    assert load_profile("cn") is base
    tuned = load_profile("cn", {"daily_attempt_cap": {"max_per_day": 4}})
    assert tuned is not base
    assert tuned.params("daily_attempt_cap").max_per_day == 4
    assert base.params("daily_attempt_cap").max_per_day == 6
    assert load_profile("cn").params("daily_attempt_cap").max_per_day == 6


def test_override_enable_and_times() -> None:
    prof = load_profile(
        "cn", {"quiet_hours_strict": {"enabled": True}, "quiet_hours": {"start": "21:30"}}
    )
    assert prof.enabled("quiet_hours_strict")
    assert prof.params("quiet_hours").start.isoformat("minutes") == "21:30"


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"no_such_rule": {"x": 1}}, "unknown rule id 'no_such_rule'"),
        ({"quiet_hours": {"begin": "21:00"}}, "quiet_hours.begin: unknown parameter"),
        ({"quiet_hours": {"start": "25:00"}}, "params.start"),
        ({"quiet_hours": {"start": 1320}}, "quoted 'HH:MM'"),
        ({"daily_attempt_cap": {"max_per_day": "six"}}, "daily_attempt_cap).params.max_per_day"),
        ({"daily_attempt_cap": {"max_per_day": -1}}, "max_per_day"),
        ({"daily_attempt_cap": {"channels": ["fax"]}}, "channels"),
        ({"quiet_hours": {"enabled": "yes"}}, "enabled: expected true/false"),
        ({"quiet_hours": "21:00"}, "expected a mapping"),
        ({"illegal_debt": {"rate_pattern": "利率(\\d+)%"}}, "named groups"),
        ({"missing_identification": {"institution_patterns": ["(unclosed"]}}, "bad regex"),
    ],
)
def test_bad_overrides_name_file_and_key(overrides: dict, needle: str) -> None:
    with pytest.raises(ProfileError) as exc:
        load_profile("cn", overrides)
    msg = str(exc.value)
    assert "cn.yaml" in msg and needle in msg, msg


# --------------------------------------------------------------------------- files


def _write_variant(tmp_path: Path, edit: Edit) -> Path:
    text = (PROFILE_DIR / "cn.yaml").read_text(encoding="utf-8")
    out = tmp_path / "lender.yaml"
    out.write_text(edit(text), encoding="utf-8")
    return out


def test_load_by_path(tmp_path: Path) -> None:
    path = _write_variant(tmp_path, lambda t: t.replace("max_per_day: 6", "max_per_day: 5"))
    prof = load_profile(str(path))
    assert prof.params("daily_attempt_cap").max_per_day == 5
    assert prof.source == str(path)


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda t: t.replace('start: "22:00"', "start: 22:00", 1), "quoted 'HH:MM'"),
        (
            lambda t: t.replace("citation: no Chinese text found", "citation: ''"),
            "(id=promise_pending).citation",
        ),
        (lambda t: t.replace("status: [CONV]", "status: [MAYBE]", 1), "status"),
        (lambda t: t.replace("- id: paid\n", "- id: disputed\n"), "duplicate rule id 'disputed'"),
        (lambda t: t.replace("'@criminal'", "'@crime_words'"), "unknown lexicon @crime_words"),
        (
            lambda t: t.replace("老赖|赖子", "老赖|(赖子"),
            "rules(id=insult).match[0].any[0]: bad regex",
        ),
        (
            lambda t: t.replace(
                "default_timezone: Asia/Shanghai", "default_timezone: Asia/Nowhere"
            ),
            "default_timezone",
        ),
        (lambda t: t.replace("name: cn\n", "name: cn\nsurprise: 1\n"), "surprise"),
        (lambda t: t.replace("  default: 抱歉", "  fallback: 抱歉"), "fallbacks"),
        (lambda t: t + "\n  - id: [broken\n", "YAML syntax error"),
        (
            lambda t: t.replace("    message: 不得威胁、恐吓或骚扰\n", ""),
            "(id=threat): Value error, content rule needs a 'message'",
        ),
    ],
)
def test_bad_profile_files_name_file_and_key(tmp_path: Path, edit: Edit, needle: str) -> None:
    path = _write_variant(tmp_path, edit)
    with pytest.raises(ProfileError) as exc:
        load_profile(str(path))
    msg = str(exc.value)
    assert "lender.yaml" in msg and needle in msg, msg


def test_missing_profile_file() -> None:
    with pytest.raises(ProfileError, match="not found"):
        load_profile("xx")
    with pytest.raises(ProfileError, match="invalid profile name"):
        load_profile("CN!")


def test_profile_is_immutable() -> None:
    prof = load_profile("cn")
    with pytest.raises(Exception):  # noqa: B017 -- pydantic's frozen-instance error
        prof.name = "xx"  # type: ignore[misc]


# --------------------------------------------------------------------------- catalogue


@pytest.mark.parametrize("name", ["cn", "us"])
def test_catalogue_listing_is_json_ready(name: str) -> None:
    prof = load_profile(name)
    rows = list_rules(prof)
    assert [r["id"] for r in rows] == [r.id for r in prof.rules]
    json.dumps(rows, ensure_ascii=False)
    row = next(r for r in rows if r["id"] == "quiet_hours")
    assert {"status", "citation", "params", "kind", "enabled", "enforced_by"} <= set(row)
    assert row["params"]["end"] == "08:00:00"


def test_rule_ids_skips_disabled() -> None:
    assert "quiet_hours_strict" not in rule_ids()
    assert "quiet_hours_strict" in rule_ids(
        load_profile("cn", {"quiet_hours_strict": {"enabled": True}})
    )
    assert len(list_rules(include_disabled=False)) == len(rule_ids())


# --------------------------------------------------------------------------- purity


def test_policy_package_has_no_service_imports() -> None:
    """The engine is pure: no web, database or nlp dependencies."""
    banned = ("fastapi", "sqlalchemy", "sqlmodel", "starlette", "nlp", "httpx", "requests")
    for path in POLICY_DIR.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for n in names:
                assert n.split(".")[0] not in banned, f"{path.name} imports {n}"
