"""Contact gate: time windows in the borrower's timezone, caps, hard stops, precedence."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time

import pytest

from agent.policy.contact import ContactContext, ContactDecision, check_contact
from agent.policy.profile import Profile, load_profile

CN = load_profile("cn")
US = load_profile("us")


def utc(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


def ctx(now: str, tz: str = "Asia/Shanghai", **kw: object) -> ContactContext:
    return ContactContext(now=utc(now), borrower_timezone=tz, **kw)  # type: ignore[arg-type]


NOON_SH = "2026-06-08T04:00:00"  # 12:00 in Shanghai


def decide(c: ContactContext, profile: Profile = CN) -> ContactDecision:
    return check_contact(c, profile)


# --------------------------------------------------------------------------- quiet hours (cn)


@pytest.mark.parametrize(
    ("utc_now", "tz", "allowed"),
    [
        ("2026-06-08T13:59:00", "Asia/Shanghai", True),  # 21:59 local
        ("2026-06-08T13:59:59", "Asia/Shanghai", True),  # 21:59:59 local
        ("2026-06-08T14:00:00", "Asia/Shanghai", False),  # 22:00 local
        ("2026-06-08T23:59:00", "Asia/Shanghai", False),  # 07:59 local
        ("2026-06-09T00:00:00", "Asia/Shanghai", True),  # 08:00 local
        ("2026-06-08T18:00:00", "Asia/Shanghai", False),  # 02:00 local
        # the same instants in Urumqi (UTC+6): two hours earlier locally
        ("2026-06-08T14:00:00", "Asia/Urumqi", True),  # 20:00 local
        ("2026-06-08T15:59:00", "Asia/Urumqi", True),  # 21:59 local
        ("2026-06-08T16:00:00", "Asia/Urumqi", False),  # 22:00 local
        ("2026-06-09T01:59:00", "Asia/Urumqi", False),  # 07:59 local
        ("2026-06-09T02:00:00", "Asia/Urumqi", True),  # 08:00 local
        ("2026-06-09T00:00:00", "Asia/Urumqi", False),  # 06:00 local (08:00 in Shanghai)
    ],
)
def test_cn_quiet_hours_boundaries(utc_now: str, tz: str, allowed: bool) -> None:
    d = decide(ctx(utc_now, tz))
    assert d.allowed is allowed
    assert d.reason == (None if allowed else "quiet_hours")


def test_local_time_is_reported() -> None:
    d = decide(ctx("2026-06-08T14:00:00", "Asia/Urumqi"))
    assert d.local_time is not None and d.local_time.hour == 20


@pytest.mark.parametrize("channel", ["voice", "sms", "chat", "visit"])
def test_quiet_hours_cover_every_outbound_channel(channel: str) -> None:
    d = decide(ctx("2026-06-08T15:00:00", channel=channel))  # 23:00 Shanghai
    assert d.reason == "quiet_hours"


def test_inbound_contact_is_never_gated() -> None:
    c = ctx("2026-06-08T15:00:00", channel="chat", direction="inbound", connected_today=9)
    assert decide(c).allowed
    c2 = ctx("2026-06-08T15:00:00", direction="inbound", disputed=True, paid=True)
    assert decide(c2) == ContactDecision(True, None, [], decide(c2).local_time)


def test_agreed_window_overrides_quiet_hours() -> None:
    agreed = [("22:00", "22:30")]
    assert decide(ctx("2026-06-08T14:15:00", agreed_windows=agreed)).allowed  # 22:15
    assert decide(ctx("2026-06-08T14:30:00", agreed_windows=agreed)).reason == "quiet_hours"
    early = [(time(7, 0), time(8, 0))]
    assert decide(ctx("2026-06-07T23:30:00", agreed_windows=early)).allowed  # 07:30


def test_quiet_hours_strict_optional() -> None:
    at_2130 = ctx("2026-06-08T13:30:00")  # 21:30 Shanghai
    assert decide(at_2130).allowed
    strict = load_profile("cn", {"quiet_hours_strict": {"enabled": True}})
    d = decide(at_2130, strict)
    assert (d.allowed, d.reason, d.rule_hits) == (
        False,
        "quiet_hours_strict",
        ["quiet_hours_strict"],
    )
    assert decide(ctx("2026-06-08T12:59:00"), strict).allowed  # 20:59
    d2 = decide(ctx("2026-06-08T14:30:00"), strict)  # 22:30: both windows
    assert d2.reason == "quiet_hours" and d2.rule_hits == ["quiet_hours", "quiet_hours_strict"]


def test_quiet_hours_override_per_lender() -> None:
    prof = load_profile("cn", {"quiet_hours": {"start": "21:00", "end": "09:00"}})
    assert decide(ctx("2026-06-08T13:00:00"), prof).reason == "quiet_hours"  # 21:00
    assert decide(ctx("2026-06-09T00:30:00"), prof).reason == "quiet_hours"  # 08:30
    assert decide(ctx("2026-06-09T01:00:00"), prof).allowed  # 09:00


def test_default_timezone_when_unknown() -> None:
    c = ContactContext(now=utc("2026-06-08T14:00:00"))  # 22:00 in Asia/Shanghai
    assert check_contact(c, CN).reason == "quiet_hours"
    assert check_contact(c).reason == "quiet_hours"  # default profile is cn


# --------------------------------------------------------------------------- quiet hours (us)


@pytest.mark.parametrize(
    ("utc_now", "allowed"),
    [
        ("2026-07-01T00:59:00", True),  # 20:59 EDT
        ("2026-07-01T01:00:00", True),  # 21:00:00 EDT: "after 21:00" read literally
        ("2026-07-01T01:00:01", False),  # 21:00:01 EDT
        ("2026-07-01T01:01:00", False),  # 21:01 EDT
        ("2026-07-01T11:59:00", False),  # 07:59 EDT
        ("2026-07-01T12:00:00", True),  # 08:00 EDT
    ],
)
def test_us_quiet_hours_boundaries(utc_now: str, allowed: bool) -> None:
    d = decide(ctx(utc_now, "America/New_York"), US)
    assert d.allowed is allowed
    assert d.reason == (None if allowed else "quiet_hours")


def test_us_quiet_hours_follow_dst_and_location() -> None:
    summer, winter = "2026-07-01T01:30:00", "2026-01-15T01:30:00"
    assert decide(ctx(summer, "America/New_York"), US).reason == "quiet_hours"  # 21:30 EDT
    assert decide(ctx(winter, "America/New_York"), US).allowed  # 20:30 EST
    assert decide(ctx(summer, "America/Los_Angeles"), US).allowed  # 18:30 PDT


# --------------------------------------------------------------------------- caps


@pytest.mark.parametrize(("connected", "allowed"), [(0, True), (2, True), (3, False), (5, False)])
def test_daily_conversation_cap(connected: int, allowed: bool) -> None:
    """<= 3 connected per day: with 3 already logged the 4th is blocked."""
    d = decide(ctx(NOON_SH, connected_today=connected))
    assert d.allowed is allowed
    assert d.reason == (None if allowed else "daily_conversation_cap")


@pytest.mark.parametrize(("attempts", "allowed"), [(0, True), (5, True), (6, False), (9, False)])
def test_daily_attempt_cap(attempts: int, allowed: bool) -> None:
    """<= 6 unanswered dials per day: with 6 made, the 7th is blocked."""
    d = decide(ctx(NOON_SH, attempts_today=attempts))
    assert d.allowed is allowed
    assert d.reason == (None if allowed else "daily_attempt_cap")


@pytest.mark.parametrize("channel", ["chat", "sms"])
def test_caps_do_not_apply_to_chat_or_sms_by_default(channel: str) -> None:
    c = ctx(NOON_SH, channel=channel, connected_today=10, attempts_today=10)
    assert decide(c).allowed


def test_cap_channels_and_limits_are_configurable() -> None:
    prof = load_profile(
        "cn",
        {
            "daily_conversation_cap": {"channels": ["voice", "sms"]},
            "daily_attempt_cap": {"max_per_day": 3},
        },
    )
    assert decide(ctx(NOON_SH, channel="sms", connected_today=3), prof).reason == (
        "daily_conversation_cap"
    )
    assert decide(ctx(NOON_SH, attempts_today=3), prof).reason == "daily_attempt_cap"
    assert decide(ctx(NOON_SH, attempts_today=2), prof).allowed


def test_cn_has_no_7in7_and_us_has_no_daily_caps() -> None:
    assert decide(ctx(NOON_SH, attempts_7d=20)).allowed
    us_noon = ctx("2026-07-01T16:00:00", "America/New_York", attempts_today=20, connected_today=20)
    assert decide(us_noon, US).allowed


US_NOON = "2026-06-07T16:00:00"  # 12:00 EDT on 2026-06-07


@pytest.mark.parametrize(("attempts", "allowed"), [(0, True), (6, True), (7, False), (12, False)])
def test_us_7in7_attempts(attempts: int, allowed: bool) -> None:
    """More than 7 attempts in 7 days: with 7 made, the 8th is blocked."""
    d = decide(ctx(US_NOON, "America/New_York", attempts_7d=attempts), US)
    assert d.allowed is allowed
    assert d.reason == (None if allowed else "call_frequency_7in7")


@pytest.mark.parametrize(
    ("conversation_utc", "allowed"),
    [
        ("2026-06-07T14:00:00", False),  # earlier today
        ("2026-06-01T16:00:00", False),  # 06-01 EDT: day 7 of the period is 06-07
        ("2026-05-31T16:00:00", True),  # 05-31: the period ended 06-06
        # 23:30 EDT on 05-31 is 06-01 in UTC: local dates decide, so allowed
        ("2026-06-01T03:30:00", True),
    ],
)
def test_us_7in7_after_conversation(conversation_utc: str, allowed: bool) -> None:
    c = ctx(US_NOON, "America/New_York", last_conversation_at=utc(conversation_utc))
    d = decide(c, US)
    assert d.allowed is allowed
    assert d.reason == (None if allowed else "call_frequency_7in7")


def test_us_7in7_is_for_calls_only() -> None:
    c = ctx(US_NOON, "America/New_York", channel="sms", attempts_7d=20)
    assert decide(c, US).allowed


# --------------------------------------------------------------------------- promise to pay

DUE = date(2026, 6, 10)


@pytest.mark.parametrize(
    ("utc_now", "allowed"),
    [
        ("2026-06-08T04:00:00", False),  # 06-08: two days before
        ("2026-06-09T04:00:00", True),  # 06-09: the agreed reminder day
        ("2026-06-10T04:00:00", True),  # due date
        ("2026-06-12T04:00:00", True),  # after (broken promise: collection resumes)
    ],
)
def test_promise_pending(utc_now: str, allowed: bool) -> None:
    d = decide(ctx(utc_now, promise_due_date=DUE))
    assert d.allowed is allowed
    assert d.reason == (None if allowed else "promise_pending")


def test_promise_reminder_only_once_and_configurable() -> None:
    c = ctx("2026-06-09T04:00:00", promise_due_date=DUE, promise_reminder_sent=True)
    assert decide(c).reason == "promise_pending"
    no_reminder = load_profile("cn", {"promise_pending": {"reminder_days_before": 0}})
    assert decide(ctx("2026-06-09T04:00:00", promise_due_date=DUE), no_reminder).reason == (
        "promise_pending"
    )
    two_days = load_profile("cn", {"promise_pending": {"reminder_days_before": 2}})
    assert decide(ctx("2026-06-08T04:00:00", promise_due_date=DUE), two_days).allowed
    assert not decide(ctx("2026-06-09T04:00:00", promise_due_date=DUE), two_days).allowed


def test_promise_day_uses_borrower_timezone() -> None:
    # 2026-06-08T17:00Z is 06-09 01:00 in Shanghai but 06-08 23:00 in Urumqi
    sh = decide(ctx("2026-06-08T17:00:00", "Asia/Shanghai", promise_due_date=DUE))
    uq = decide(ctx("2026-06-08T17:00:00", "Asia/Urumqi", promise_due_date=DUE))
    assert "promise_pending" not in sh.rule_hits
    assert "promise_pending" in uq.rule_hits


# --------------------------------------------------------------------------- hard stops


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        ({"disputed": True}, "disputed"),
        ({"cease_channels": {"all"}}, "cease_requested"),
        ({"cease_channels": {"voice"}}, "cease_requested"),
        ({"vulnerable_hold": True}, "vulnerable_hold"),
        ({"deceased": True}, "vulnerable_hold"),
        ({"paid": True}, "paid"),
        ({"wrong_number": True}, "wrong_number"),
        ({"recorded": False}, "recording_retention"),
    ],
)
def test_cn_hard_stops(flags: dict, reason: str) -> None:
    d = decide(ctx(NOON_SH, **flags))
    assert (d.allowed, d.reason, d.rule_hits) == (False, reason, [reason])


def test_cease_on_other_channel_does_not_block() -> None:
    assert decide(ctx(NOON_SH, cease_channels={"sms"})).allowed
    assert decide(ctx(NOON_SH, channel="sms", cease_channels=["sms"])).reason == "cease_requested"


def test_us_cease_and_medium_opt_out() -> None:
    us = "2026-07-01T16:00:00"
    assert (
        decide(ctx(us, "America/New_York", cease_channels={"all"}), US).reason == "cease_requested"
    )
    c = ctx(us, "America/New_York", channel="sms", cease_channels={"sms"})
    assert decide(c, US).reason == "medium_opt_out"
    assert decide(replace(c, channel="voice"), US).allowed


def test_us_ai_voice_calls_need_prior_express_consent() -> None:
    call = ctx("2026-07-01T16:00:00", "America/New_York", ai_voice=True)
    assert decide(call, US).reason == "ai_voice_consent"
    assert decide(replace(call, ai_voice_consent=True), US).allowed
    assert decide(replace(call, ai_voice=False), US).allowed  # a human collector's call
    assert decide(replace(call, channel="sms"), US).allowed  # not a voice call
    assert decide(ctx(NOON_SH, ai_voice=True), CN).allowed  # not a rule of the cn profile
    # A hard stop still comes first: the supervisor sees why, then what else blocks.
    stopped = decide(replace(call, disputed=True), US)
    assert stopped.rule_hits == ["disputed", "ai_voice_consent"]


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        ({"attorney_represented": True}, "attorney_represented"),
        ({"deceased": True}, "deceased"),
        ({"vulnerable_hold": True}, "vulnerable_hold"),
        ({"disputed": True}, "disputed"),
        ({"paid": True}, "paid"),
        ({"wrong_number": True}, "wrong_number"),
        ({"inconvenient_windows": [("12:00", "13:00")]}, "inconvenient_time_place"),
    ],
)
def test_us_stops(flags: dict, reason: str) -> None:
    d = decide(ctx("2026-07-01T16:30:00", "America/New_York", **flags), US)  # 12:30 EDT
    assert d.reason == reason


def test_cn_debtor_time_preference_is_cease_requested() -> None:
    c = ctx(NOON_SH, inconvenient_windows=[("11:00", "14:00")])
    assert decide(c).reason == "cease_requested"
    assert decide(replace(c, now=utc("2026-06-08T07:00:00"))).allowed  # 15:00


def test_cn_third_party_gate_and_opt_out() -> None:
    c = ctx(NOON_SH, target="third_party")
    assert decide(c).reason == "third_party_gate"
    assert decide(replace(c, debtor_unreachable=True)).allowed
    assert decide(replace(c, debtor_unreachable=True, contact_opted_out=True)).reason == (
        "contact_opted_out"
    )


def test_allowed_decision_shape() -> None:
    d = decide(ctx(NOON_SH))
    assert (d.allowed, d.reason, d.rule_hits) == (True, None, [])
    assert d.to_dict() == {"allowed": True, "reason": None, "rule_hits": []}


# --------------------------------------------------------------------------- precedence

EVERYTHING = {
    "disputed": True,
    "cease_channels": {"all"},
    "vulnerable_hold": True,
    "paid": True,
    "wrong_number": True,
    "promise_due_date": date(2026, 6, 30),
    "connected_today": 3,
    "attempts_today": 6,
}
ORDER = [
    "disputed",
    "cease_requested",
    "vulnerable_hold",
    "paid",
    "wrong_number",
    "promise_pending",
    "quiet_hours",
    "daily_conversation_cap",
    "daily_attempt_cap",
]


def test_precedence_full_order() -> None:
    d = decide(ctx("2026-06-08T15:00:00", **EVERYTHING))  # 23:00 Shanghai
    assert d.rule_hits == ORDER
    assert d.reason == "disputed"


@pytest.mark.parametrize("drop", range(len(ORDER)))
def test_precedence_each_rule_outranks_the_later_ones(drop: int) -> None:
    """Switch off the first `drop` causes: the next one in ORDER becomes the reason."""
    flags = dict(EVERYTHING)
    removals = {
        "disputed": ("disputed", False),
        "cease_requested": ("cease_channels", set()),
        "vulnerable_hold": ("vulnerable_hold", False),
        "paid": ("paid", False),
        "wrong_number": ("wrong_number", False),
        "promise_pending": ("promise_due_date", None),
    }
    now = "2026-06-08T15:00:00"  # 23:00
    for rid in ORDER[:drop]:
        if rid == "quiet_hours":
            now = NOON_SH
        elif rid == "daily_conversation_cap":
            flags["connected_today"] = 0
        else:
            k, v = removals[rid]
            flags[k] = v
    d = decide(ctx(now, **flags))
    assert d.reason == ORDER[drop]
    assert d.rule_hits == ORDER[drop:]


def test_us_precedence() -> None:
    c = ctx(
        "2026-07-01T02:00:00",  # 22:00 EDT
        "America/New_York",
        paid=True,
        attorney_represented=True,
        attempts_7d=9,
    )
    assert decide(c, US).rule_hits == [
        "paid",
        "attorney_represented",
        "quiet_hours",
        "call_frequency_7in7",
    ]


# --------------------------------------------------------------------------- validation


def test_naive_now_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ContactContext(now=datetime(2026, 6, 8, 12, 0))


def test_bad_inputs_rejected() -> None:
    with pytest.raises(ValueError, match="channel"):
        ctx(NOON_SH, channel="fax")
    with pytest.raises(ValueError, match="cease channel"):
        ctx(NOON_SH, cease_channels={"pigeon"})
    with pytest.raises(ValueError, match=">= 0"):
        ctx(NOON_SH, attempts_today=-1)
    with pytest.raises(ValueError, match="Mars/Olympus"):
        decide(ctx(NOON_SH, "Mars/Olympus"))


def test_context_is_immutable_and_normalised() -> None:
    c = ctx(NOON_SH, cease_channels=["sms"], agreed_windows=[("22:00", "22:30")])
    assert c.cease_channels == frozenset({"sms"})
    assert c.agreed_windows == ((time(22, 0), time(22, 30)),)
    with pytest.raises(AttributeError):
        c.paid = True  # type: ignore[misc]


def test_pure_function_same_input_same_output() -> None:
    c = ctx("2026-06-08T14:00:00", connected_today=3)
    assert decide(c) == decide(c)
    assert c.now == utc("2026-06-08T14:00:00")  # the context is not mutated
