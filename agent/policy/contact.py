"""Contact rules: may we start a contact (call, SMS, chat push, visit) right now?

:func:`check_contact` is a pure function of a :class:`ContactContext` that the
caller fills from its ledger (attempt and conversation counts are summed across
the lender and all its agencies, catalogue §4) and a profile. It evaluates every
rule the profile enables and reports the first hit by precedence (catalogue §4):

1. hard stops: ``disputed``, ``cease_requested`` (``medium_opt_out`` for a
   channel-only opt-out where the profile has that rule), ``vulnerable_hold``
   (``deceased`` where the profile has it), ``paid``;
2. ``attorney_represented``; 3. ``wrong_number``;
4. who may be contacted: ``contact_opted_out``, ``third_party_gate``; how:
   ``ai_voice_consent`` (an AI-voice call needs the number's prior express consent);
5. ``recording_retention`` (no unrecorded AI contact);
6. ``promise_pending``;
7. time: ``quiet_hours``, ``quiet_hours_strict``, debtor-designated windows;
8. caps: ``daily_conversation_cap``, ``daily_attempt_cap``, ``call_frequency_7in7``.

Only outbound contacts are gated: a borrower-initiated (inbound) chat or call
is always answered; what the agent says is then checked by the content rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agent.policy.profile import Profile, QuietHoursParams, load_profile

CHANNELS = frozenset({"voice", "chat", "sms", "visit", "email"})

Window = tuple[time, time]


def _to_time(v: time | str) -> time:
    if isinstance(v, time):
        return v
    h, m = str(v).split(":")
    return time(int(h), int(m))


def _windows(ws: Iterable[tuple[time | str, time | str]]) -> tuple[Window, ...]:
    return tuple((_to_time(a), _to_time(b)) for a, b in ws)


@dataclass(frozen=True, slots=True)
class ContactContext:
    """Everything the gate needs about one prospective contact; the caller counts.

    ``ai_voice``: the call speaks with a synthetic voice; ``ai_voice_consent``: the number has
    the prior express consent such a call needs where the profile asks for it (``us``).
    ``attempts_today``: dial attempts to this number today while unanswered;
    ``connected_today``: connected conversations with the debtor today;
    ``attempts_7d``: call attempts about this debt in the 7 consecutive days ending
    today (US); ``last_conversation_at``: last telephone conversation about the debt.
    Windows are ``(start, end)`` local times (``time`` or ``"HH:MM"``), end exclusive,
    wrapping midnight when start > end.
    """

    now: datetime
    borrower_timezone: str | None = None
    channel: str = "voice"
    direction: Literal["outbound", "inbound"] = "outbound"
    paid: bool = False
    disputed: bool = False
    cease_channels: frozenset[str] = frozenset()
    wrong_number: bool = False
    vulnerable_hold: bool = False
    deceased: bool = False
    attorney_represented: bool = False
    promise_due_date: date | None = None
    promise_reminder_sent: bool = False
    agreed_windows: tuple[Window, ...] = ()
    inconvenient_windows: tuple[Window, ...] = ()
    attempts_today: int = 0
    connected_today: int = 0
    attempts_7d: int = 0
    last_conversation_at: datetime | None = None
    target: Literal["borrower", "third_party"] = "borrower"
    contact_opted_out: bool = False
    debtor_unreachable: bool = False
    recorded: bool = True
    ai_voice: bool = False
    ai_voice_consent: bool = False

    def __post_init__(self) -> None:
        # Accept plain sets/lists and "HH:MM" strings from callers; store immutable forms.
        object.__setattr__(self, "cease_channels", frozenset(self.cease_channels))
        object.__setattr__(self, "agreed_windows", _windows(self.agreed_windows))
        object.__setattr__(self, "inconvenient_windows", _windows(self.inconvenient_windows))
        if self.now.tzinfo is None or self.now.utcoffset() is None:
            raise ValueError("ContactContext.now must be timezone-aware")
        if self.last_conversation_at is not None and self.last_conversation_at.tzinfo is None:
            raise ValueError("ContactContext.last_conversation_at must be timezone-aware")
        if self.channel not in CHANNELS:
            raise ValueError(f"unknown channel {self.channel!r} (one of {sorted(CHANNELS)})")
        bad = self.cease_channels - CHANNELS - {"all"}
        if bad:
            raise ValueError(f"unknown cease channel(s) {sorted(bad)}")
        for name in ("attempts_today", "connected_today", "attempts_7d"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")


@dataclass(frozen=True, slots=True)
class ContactDecision:
    allowed: bool
    reason: str | None
    rule_hits: list[str] = field(default_factory=list)
    local_time: datetime | None = None

    def to_dict(self) -> dict[str, object]:
        return {"allowed": self.allowed, "reason": self.reason, "rule_hits": list(self.rule_hits)}


def _zone(ctx: ContactContext, profile: Profile) -> ZoneInfo:
    name = ctx.borrower_timezone or profile.default_timezone
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown borrower timezone {name!r}") from exc


def _in_window(t: time, start: time, end: time, start_inclusive: bool = True) -> bool:
    """[start, end) (or (start, end) when not start_inclusive), wrapping midnight."""
    after_start = t >= start if start_inclusive else t > start
    if start <= end:
        return after_start and t < end
    return after_start or t < end


def _quiet(p: QuietHoursParams, ctx: ContactContext, t: time) -> bool:
    if p.channels is not None and ctx.channel not in p.channels:
        return False
    if not _in_window(t, p.start, p.end, p.start_inclusive):
        return False
    # "unless the debtor agreed a time": an agreed window overrides the quiet hours.
    return not any(_in_window(t, a, b) for a, b in ctx.agreed_windows)


def check_contact(ctx: ContactContext, profile: Profile | None = None) -> ContactDecision:
    """Decide whether an outbound contact may start now; ``reason`` is a stable rule id.

    ``rule_hits`` lists every blocking rule in precedence order (``reason`` is the
    first), so a supervisor sees all obstacles, not just the first.
    """
    profile = profile if profile is not None else load_profile("cn")
    local = ctx.now.astimezone(_zone(ctx, profile))
    if ctx.direction == "inbound":
        return ContactDecision(True, None, [], local)

    on = profile.enabled
    hits: list[str] = []

    def hit(rule_id: str, cond: bool) -> None:
        if cond and on(rule_id) and rule_id not in hits:
            hits.append(rule_id)

    # 1. hard stops
    hit("disputed", ctx.disputed)
    ceased_all = "all" in ctx.cease_channels
    ceased_channel = ctx.channel in ctx.cease_channels
    if ceased_all or not on("medium_opt_out"):
        hit("cease_requested", ceased_all or ceased_channel)
    else:
        hit("medium_opt_out", ceased_channel)
    if on("deceased"):
        hit("deceased", ctx.deceased)
        hit("vulnerable_hold", ctx.vulnerable_hold)
    else:
        hit("vulnerable_hold", ctx.vulnerable_hold or ctx.deceased)
    hit("paid", ctx.paid)
    # 2-3.
    hit("attorney_represented", ctx.attorney_represented)
    hit("wrong_number", ctx.wrong_number)
    # 4. third parties (cn): only when the debtor is unreachable, never after an opt-out
    if ctx.target == "third_party":
        hit("contact_opted_out", ctx.contact_opted_out)
        hit("third_party_gate", not (ctx.debtor_unreachable or ctx.deceased))
    # An AI voice is an "artificial voice" (FCC 24-17): prior express consent, per number.
    hit("ai_voice_consent", ctx.channel == "voice" and ctx.ai_voice and not ctx.ai_voice_consent)
    # 5. recording
    if on("recording_retention") and profile.params("recording_retention").block_unrecorded:
        hit("recording_retention", not ctx.recorded)
    # 6. promise to pay: one agreed reminder (default the day before), then on/after the date
    if ctx.promise_due_date is not None and on("promise_pending"):
        days = profile.params("promise_pending").reminder_days_before
        today = local.date()
        reminder_day = ctx.promise_due_date - timedelta(days=days)
        if today < ctx.promise_due_date:
            is_reminder = days > 0 and today == reminder_day and not ctx.promise_reminder_sent
            hit("promise_pending", not is_reminder)
    # 7. time of day in the borrower's timezone
    t = local.time().replace(tzinfo=None)
    for rid in ("quiet_hours", "quiet_hours_strict"):
        if on(rid):
            hit(rid, _quiet(profile.params(rid), ctx, t))
    if ctx.inconvenient_windows:
        rid = "inconvenient_time_place" if on("inconvenient_time_place") else "cease_requested"
        hit(rid, any(_in_window(t, a, b) for a, b in ctx.inconvenient_windows))
    # 8. caps
    if on("daily_conversation_cap"):
        p = profile.params("daily_conversation_cap")
        hit(
            "daily_conversation_cap",
            ctx.channel in p.channels and ctx.connected_today >= p.max_per_day,
        )
    if on("daily_attempt_cap"):
        p = profile.params("daily_attempt_cap")
        hit("daily_attempt_cap", ctx.channel in p.channels and ctx.attempts_today >= p.max_per_day)
    if on("call_frequency_7in7"):
        p = profile.params("call_frequency_7in7")
        if ctx.channel in p.channels:
            too_many = ctx.attempts_7d >= p.max_attempts
            recent = False
            if ctx.last_conversation_at is not None and p.conversation_cooldown_days > 0:
                conv_day = ctx.last_conversation_at.astimezone(local.tzinfo).date()
                # The conversation day is day 1 of the 7-day period (1006.14(b)(2)(i)(B)).
                recent = 0 <= (local.date() - conv_day).days < p.conversation_cooldown_days
            hit("call_frequency_7in7", too_many or recent)

    return ContactDecision(not hits, hits[0] if hits else None, hits, local)
