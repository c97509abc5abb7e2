"""Short-lived, borrower-scoped chat session tokens signed with HMAC-SHA256."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime


class TokenError(ValueError):
    pass


@dataclass(frozen=True)
class ChatClaims:
    session_id: str
    borrower_id: str
    loan_id: str | None
    expires_at: datetime
    direction: str = "inbound"  # outbound chats confirm the right party before any debt detail


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue(secret: bytes, claims: ChatClaims) -> str:
    payload = json.dumps({"sid": claims.session_id, "bid": claims.borrower_id,
                          "lid": claims.loan_id, "exp": int(claims.expires_at.timestamp()),
                          "dir": claims.direction},
                         separators=(",", ":")).encode()
    body = _b64(payload)
    signature = _b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())
    return f"{body}.{signature}"


def verify(secret: bytes, token: object, now: datetime) -> ChatClaims:
    """Raise TokenError for anything but an intact, unexpired token."""
    if not isinstance(token, str) or token.count(".") != 1 or len(token) > 2048:
        raise TokenError("malformed token")
    body, signature = token.split(".")
    expected = _b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected, signature):
        raise TokenError("bad signature")
    try:
        data = json.loads(_unb64(body))
        claims = ChatClaims(session_id=str(data["sid"]), borrower_id=str(data["bid"]),
                            loan_id=data.get("lid"),
                            expires_at=datetime.fromtimestamp(int(data["exp"]), UTC),
                            direction=str(data.get("dir", "inbound")))
    except (ValueError, KeyError, TypeError) as exc:
        raise TokenError("malformed token") from exc
    if claims.expires_at <= now:
        raise TokenError("token expired")
    return claims
