"""Placing outbound calls: gate, record, dial — shared by the API and ``huikuan dial``."""

from __future__ import annotations

import asyncio
from typing import Any

from agent.bootstrap import Services
from agent.contacts import record_attempt_outcome, reserve_contact
from agent.media_auth import issue_media_token
from agent.store.db import session_scope
from agent.store.tables import Borrower, Loan


class CallRefused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TelephonyUnavailable(RuntimeError):
    pass


def _gate(services: Services, loan_id: str) -> tuple[int, str | None, str]:
    now = services.clock()
    with session_scope(services.engine) as session:
        attempt = reserve_contact(session, services.policy, loan_id, "voice", now)
        loan = session.get(Loan, loan_id)
        borrower = session.get(Borrower, loan.borrower_id) if loan else None
        assert attempt.id is not None
        blocked = attempt.reason if attempt.outcome == "blocked" else None
        return attempt.id, blocked, borrower.phone if borrower else ""


def _record(services: Services, attempt_id: int, outcome: str, **fields: Any) -> None:
    with session_scope(services.engine) as session:
        record_attempt_outcome(session, attempt_id, outcome, **fields)


async def place_call(services: Services, loan_id: str) -> dict[str, Any]:
    """Gate and record the attempt first (committed), then dial; a failed dial is recorded."""
    attempt_id, blocked, phone = await asyncio.to_thread(_gate, services, loan_id)
    if blocked:
        raise CallRefused(blocked)
    provider = services.telephony()
    if provider is None:
        await asyncio.to_thread(_record, services, attempt_id, "failed", reason="no_provider")
        raise TelephonyUnavailable("no telephony provider configured: set HUIKUAN_TELEPHONY=twilio "
                                   "with HUIKUAN_TWILIO_ACCOUNT_SID, HUIKUAN_TWILIO_AUTH_TOKEN "
                                   "and HUIKUAN_TWILIO_FROM_NUMBER")
    settings = services.settings
    stream_url = settings.public_url.replace("http", "ws", 1).rstrip("/") + "/ws/media"
    token, _ = await asyncio.to_thread(issue_media_token, services.engine, loan_id, "outbound",
                                       services.clock(), settings.media_token_ttl_s, attempt_id)
    try:
        # Our call id is the attempt's id: /ws/media finds the attempt by it when the call
        # connects (contract: start.customParameters carries loan_id and call_id).
        provider_sid = await provider.dial(to=_e164(phone),
                                           from_=settings.twilio_from_number or "",
                                           stream_url=stream_url,
                                           params={"loan_id": loan_id, "call_id": str(attempt_id),
                                                   "token": token})
    except Exception as exc:
        await asyncio.to_thread(_record, services, attempt_id, "failed", reason="dial_failed")
        raise TelephonyUnavailable(f"could not place the call: {exc}") from exc
    await asyncio.to_thread(_record, services, attempt_id, "dialing", call_id=provider_sid)
    return {"call_id": str(attempt_id), "provider_call_sid": provider_sid, "loan_id": loan_id,
            "status": "dialing", "allowed": True, "reason": None}


def _e164(phone: str) -> str:
    digits = "".join(ch for ch in phone if ch.isdigit() or ch == "+")
    if digits.startswith("+"):
        return digits
    return "+86" + digits if len(digits) == 11 and digits.startswith("1") else digits
