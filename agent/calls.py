"""Placing outbound calls: gate, record, dial — shared by the API and ``huikuan dial``."""

from __future__ import annotations

from typing import Any

from agent.bootstrap import Services
from agent.contacts import record_attempt_outcome, reserve_contact
from agent.store.db import session_scope
from agent.store.tables import Borrower, Loan


class CallRefused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TelephonyUnavailable(RuntimeError):
    pass


def place_call(services: Services, loan_id: str) -> dict[str, Any]:
    """Gate and record the attempt first (committed), then dial; a failed dial is recorded."""
    now = services.clock()
    with session_scope(services.engine) as session:
        attempt = reserve_contact(session, services.policy, loan_id, "voice", now)
        attempt_id, allowed, reason = attempt.id, attempt.outcome != "blocked", attempt.reason
        loan = session.get(Loan, loan_id)
        borrower = session.get(Borrower, loan.borrower_id) if loan else None
        phone = borrower.phone if borrower else ""
    if not allowed:
        raise CallRefused(reason or "blocked")
    assert attempt_id is not None
    try:
        provider = services.telephony()
        stream_url = services.settings.public_url.replace("http", "ws", 1) + "/ws/media"
        call_id = provider.dial(to=phone, from_=services.settings.twilio_from_number or "",
                                stream_url=stream_url,
                                params={"loan_id": loan_id, "attempt_id": str(attempt_id)})
    except Exception as exc:
        with session_scope(services.engine) as session:
            record_attempt_outcome(session, attempt_id, "failed", reason="dial_failed")
        raise TelephonyUnavailable(f"could not place the call: {exc}") from exc
    with session_scope(services.engine) as session:
        record_attempt_outcome(session, attempt_id, "dialing", call_id=call_id)
    return {"call_id": call_id, "loan_id": loan_id, "attempt_id": attempt_id,
            "status": "dialing", "allowed": True, "reason": None}
