"""Contact planning and the dial gate: the database side of the contact rules.

The rules themselves are pure (``agent.policy.contact``); this module gathers their inputs from
the database — attempts today and this week, restrictions, pending promises, positions — and
records every attempt, refused ones included. Caps are counted in the database under a per-
borrower row lock, so they hold across several worker processes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlmodel import Session

from agent.core.positions import LoanPosition, compute_position
from agent.policy.contact import ContactContext, check_contact
from agent.store.loans import BorrowerSummary, LoanSummary, iter_loans, load_loan, phone_key
from agent.store.tables import (
    Borrower,
    ContactAttempt,
    ContactConsent,
    ContactRestriction,
    Conversation,
    Loan,
    Promise,
)
from agent.strategy import StrategyBook

ACTIONS = {"voice": "call", "chat": "chat", "sms": "sms"}
DIAL_OUTCOMES = ("dialing", "no_answer", "voicemail", "unreachable", "failed", "busy")


@dataclass
class BorrowerHistory:
    attempts: list[ContactAttempt] = field(default_factory=list)
    restrictions: list[ContactRestriction] = field(default_factory=list)
    consents: list[ContactConsent] = field(default_factory=list)


def _local_day_start(now: datetime, zone: ZoneInfo) -> datetime:
    local = now.astimezone(zone)
    return datetime.combine(local.date(), time(0), zone)


def _histories(session: Session, borrower_ids: Iterable[str] | None,
               since: datetime) -> dict[str, BorrowerHistory]:
    histories: dict[str, BorrowerHistory] = defaultdict(BorrowerHistory)
    attempts = select(ContactAttempt).where(ContactAttempt.at >= since)
    restrictions = select(ContactRestriction).where(ContactRestriction.active.is_(True))
    consents = select(ContactConsent).where(ContactConsent.revoked_at.is_(None))
    if borrower_ids is not None:
        ids = list(borrower_ids)
        attempts = attempts.where(ContactAttempt.borrower_id.in_(ids))
        restrictions = restrictions.where(ContactRestriction.borrower_id.in_(ids))
        consents = consents.where(ContactConsent.borrower_id.in_(ids))
    for attempt in session.execute(attempts).scalars():
        histories[attempt.borrower_id].attempts.append(attempt)
    for restriction in session.execute(restrictions).scalars():
        histories[restriction.borrower_id].restrictions.append(restriction)
    for consent in session.execute(consents).scalars():
        histories[consent.borrower_id].consents.append(consent)
    return histories


def _pending_promises(session: Session, loan_ids: Iterable[str] | None,
                      today_utc: date) -> dict[str, date]:
    query = select(Promise).where(Promise.status == "pending",
                                  Promise.due_date >= today_utc - timedelta(days=1))
    if loan_ids is not None:
        query = query.where(Promise.loan_id.in_(list(loan_ids)))
    latest: dict[str, date] = {}
    for promise in session.execute(query).scalars():
        if promise.loan_id not in latest or promise.due_date > latest[promise.loan_id]:
            latest[promise.loan_id] = promise.due_date
    return latest


def contact_context(*, now: datetime, channel: str, borrower: Borrower | BorrowerSummary,
                    loan: Loan | LoanSummary,
                    position: LoanPosition, history: BorrowerHistory,
                    promise_due: date | None) -> ContactContext:
    zone = ZoneInfo(borrower.timezone)
    day_start = _local_day_start(now, zone)
    week_start = now - timedelta(days=7)
    voice_today = [a for a in history.attempts
                   if a.channel == channel and a.at >= day_start and a.outcome != "blocked"]
    ceased = {r.channel for r in history.restrictions if r.kind == "cease_requested"}
    disputed = loan.paused_reason in ("disputed", "payment_claim") or any(
        r.kind == "disputed" and r.loan_id in (None, loan.id) for r in history.restrictions)
    conversations = [a.at for a in history.attempts if a.outcome == "connected"]
    # Every call the product places speaks with a synthetic voice; consent is per number.
    number = phone_key(borrower.phone)
    ai_voice_consent = any(c.kind == "ai_voice" and c.phone == number and c.given_at <= now
                           for c in history.consents)
    return ContactContext(
        now=now, borrower_timezone=borrower.timezone, channel=channel, direction="outbound",
        # Paid means nothing left on the loan, not "nothing due today": a current loan after a
        # chat has future instalments and is not `paid`.
        paid=position.paid_off,
        disputed=disputed,
        cease_channels=ceased,
        wrong_number=any(r.kind == "wrong_number" for r in history.restrictions),
        vulnerable_hold=any(r.kind == "vulnerable_hold" for r in history.restrictions),
        promise_due_date=promise_due if promise_due and promise_due >= now.astimezone(zone).date()
        else None,
        attempts_today=sum(1 for a in voice_today if a.outcome in DIAL_OUTCOMES),
        connected_today=sum(1 for a in voice_today if a.outcome == "connected"),
        attempts_7d=sum(1 for a in history.attempts
                        if a.channel == channel and a.at >= week_start and a.outcome != "blocked"),
        last_conversation_at=max(conversations) if conversations else None,
        ai_voice=channel == "voice", ai_voice_consent=ai_voice_consent,
    )


def contact_plan(session: Session, strategies: StrategyBook, profile: Any, at: datetime,
                 channel: str) -> list[dict[str, Any]]:
    """One row per loan in collection: overdue now, or with a collection history."""
    since = at - timedelta(days=8)
    histories = _histories(session, None, since)
    promises = _pending_promises(session, None, at.date())
    with_history = set(session.execute(select(Conversation.loan_id).distinct()).scalars())
    rows = []
    for loan, borrower, terms, payments in iter_loans(session):
        position = compute_position(terms, payments, at)
        if position.dpd == 0 and loan.id not in with_history and loan.id not in promises:
            continue
        strategy = strategies.for_borrower(borrower.id)
        segment = strategy.segment_for(position.bucket, borrower.ability)
        ctx = contact_context(now=at, channel=channel, borrower=borrower, loan=loan,
                              position=position, history=histories.get(borrower.id,
                                                                       BorrowerHistory()),
                              promise_due=promises.get(loan.id))
        verdict = check_contact(ctx, profile)
        rows.append({
            "loan_id": loan.id, "borrower_id": borrower.id, "bucket": position.bucket,
            "strategy": strategy.ref, "segment": segment.id, "action": ACTIONS[channel],
            "allowed": verdict.allowed, "reason": verdict.reason,
            "dpd": position.dpd, "total_due": float(round(position.total_due, 2)),
            "in_strategy_channels": channel in segment.channels,
            "local_time": at.astimezone(ZoneInfo(borrower.timezone)).isoformat(),
            "attempts_today": ctx.attempts_today,
        })
    rows.sort(key=lambda r: (not r["allowed"], -r["dpd"], r["loan_id"]))
    return rows


def reserve_contact(session: Session, profile: Any, loan_id: str, channel: str,
                    now: datetime) -> ContactAttempt:
    """Check the rules and record the attempt in one transaction, under the borrower's lock.

    Refused attempts are recorded too (outcome ``blocked``, ``reason`` the rule id) so
    supervisors see them; the caller commits either way.
    """
    loaded = load_loan(session, loan_id)
    if loaded is None:
        raise LookupError(f"unknown loan {loan_id!r}")
    terms, payments = loaded
    # Serialise gates for one borrower across processes: a row lock on PostgreSQL, the
    # database write lock on SQLite.
    session.execute(update(Borrower).where(Borrower.id == terms.borrower_id)
                    .values(ability=Borrower.ability))
    borrower = session.get(Borrower, terms.borrower_id)
    loan = session.get(Loan, loan_id)
    assert borrower is not None and loan is not None
    position = compute_position(terms, payments, now)
    history = _histories(session, [borrower.id], now - timedelta(days=8)).get(
        borrower.id, BorrowerHistory())
    promise_due = _pending_promises(session, [loan_id], now.date()).get(loan_id)
    ctx = contact_context(now=now, channel=channel, borrower=borrower, loan=loan,
                          position=position, history=history, promise_due=promise_due)
    verdict = check_contact(ctx, profile)
    attempt = ContactAttempt(borrower_id=borrower.id, loan_id=loan_id, channel=channel, at=now,
                             outcome="dialing" if verdict.allowed else "blocked",
                             reason=verdict.reason)
    session.add(attempt)
    session.flush()
    return attempt


def record_attempt_outcome(session: Session, attempt_id: int, outcome: str, **fields: Any) -> None:
    session.execute(update(ContactAttempt).where(ContactAttempt.id == attempt_id)
                    .values(outcome=outcome, **fields))
