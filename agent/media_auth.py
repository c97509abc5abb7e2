"""Who may open a ``/ws/media`` stream: a single-use media token or a provider signature.

Contract v1.1: a stream is accepted only with a short-lived, single-use token issued for that
loan (``POST /api/v1/media-tokens``, or automatically for calls the service places), or with a
valid ``X-Twilio-Signature`` on the websocket handshake. Every refusal looks the same to the
caller, so the socket cannot be used to learn which loan ids exist.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.engine import Engine

from agent.store.db import session_scope
from agent.store.tables import ContactAttempt, Loan, MediaToken

DIRECTIONS = ("outbound", "inbound")


class MediaAuthError(PermissionError):
    """Any reason a stream is refused; the message is for the log, never for the caller."""


@dataclass(frozen=True)
class MediaGrant:
    loan_id: str
    borrower_id: str
    direction: str
    # The outbound attempt this stream belongs to: only such calls were placed by the service,
    # and only on those may a key press confirm the borrower's identity.
    attempt_id: int | None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_media_token(engine: Engine, loan_id: str, direction: str, now: datetime, ttl_s: int,
                      attempt_id: int | None = None) -> tuple[str, datetime]:
    """A new token for one stream about ``loan_id``; LookupError for an unknown loan."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}")
    token = secrets.token_urlsafe(32)
    expires_at = now + timedelta(seconds=ttl_s)
    with session_scope(engine) as db:
        if db.get(Loan, loan_id) is None:
            raise LookupError(f"unknown loan {loan_id!r}")
        db.add(MediaToken(token_hash=_digest(token), loan_id=loan_id, direction=direction,
                          attempt_id=attempt_id, expires_at=expires_at))
    return token, expires_at


def redeem_media_token(engine: Engine, token: object, loan_id: str, now: datetime
                       ) -> MediaGrant:
    """Spend the token (atomically, so two sockets cannot share one) and say what it grants."""
    if not isinstance(token, str) or not 16 <= len(token) <= 256:
        raise MediaAuthError("missing or malformed media token")
    digest = _digest(token)
    with session_scope(engine) as db:
        spent = db.execute(
            update(MediaToken)
            .where(MediaToken.token_hash == digest, MediaToken.used_at.is_(None),  # type: ignore[union-attr]
                   MediaToken.expires_at > now, MediaToken.loan_id == loan_id)
            .values(used_at=now)
        ).rowcount
        if spent != 1:
            raise MediaAuthError("media token unknown, spent, expired or for another loan")
        row = db.get(MediaToken, digest)
        loan = db.get(Loan, loan_id)
        if row is None or loan is None:
            raise MediaAuthError("loan of the media token is gone")
        return MediaGrant(loan_id, loan.borrower_id, row.direction, row.attempt_id)


def grant_for_signed_stream(engine: Engine, loan_id: str, call_id: str | None) -> MediaGrant:
    """A provider-signed stream: the loan must exist; it counts as placed by the service only
    when ``call_id`` names an outbound attempt for that loan."""
    with session_scope(engine) as db:
        loan = db.get(Loan, loan_id) if loan_id else None
        if loan is None:
            raise MediaAuthError("signed stream for an unknown loan")
        attempt_id = None
        if call_id and call_id.isdigit():
            attempt = db.get(ContactAttempt, int(call_id))
            if attempt is not None and attempt.loan_id == loan_id:
                attempt_id = attempt.id
        return MediaGrant(loan_id, loan.borrower_id,
                          "outbound" if attempt_id else "inbound", attempt_id)


def twilio_signature(auth_token: str, url: str, params: dict[str, str] | None = None) -> str:
    """Twilio's request signature: HMAC-SHA1 over the URL and the sorted POST parameters."""
    data = url + "".join(f"{key}{value}" for key, value in sorted((params or {}).items()))
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
                            ).decode()


def valid_twilio_signature(auth_token: str | None, signature: str | None,
                           urls: list[str]) -> bool:
    """True when ``signature`` signs one of the URLs this stream may have been opened with."""
    if not auth_token or not signature:
        return False
    return any(hmac.compare_digest(twilio_signature(auth_token, url), signature) for url in urls)
