"""Outbound calls through Twilio's REST API, connected to our media-stream websocket.

The call is created with inline TwiML ``<Connect><Stream>`` so no TwiML webhook is needed;
``params`` (``loan_id``, ``call_id``) reach the stream as ``start.customParameters``.
"""

from __future__ import annotations

import os
import re
from xml.sax.saxutils import quoteattr

import httpx

from voice.telephony.base import TelephonyError

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def stream_twiml(stream_url: str, params: dict[str, str]) -> str:
    """``<Response><Connect><Stream url=…><Parameter name=… value=…/>…`` with escaping."""
    inner = "".join(f"<Parameter name={quoteattr(str(k))} value={quoteattr(str(v))}/>"
                    for k, v in params.items())
    return (f"<Response><Connect><Stream url={quoteattr(stream_url)}>{inner}</Stream>"
            "</Connect></Response>")


class TwilioTelephony:
    """``TwilioTelephony(account_sid, auth_token, base_url=...)``; env fallbacks
    ``TWILIO_ACCOUNT_SID``/``TWILIO_AUTH_TOKEN``/``TWILIO_API_BASE``."""

    def __init__(self, account_sid: str | None = None, auth_token: str | None = None,
                 base_url: str | None = None, timeout_s: float = 10.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.account_sid = account_sid or os.environ.get("TWILIO_ACCOUNT_SID", "")
        self.auth_token = auth_token or os.environ.get("TWILIO_AUTH_TOKEN", "")
        if not self.account_sid or not self.auth_token:
            raise TelephonyError("Twilio credentials missing: set TWILIO_ACCOUNT_SID and "
                                 "TWILIO_AUTH_TOKEN")
        self.base_url = (base_url or os.environ.get("TWILIO_API_BASE")
                         or "https://api.twilio.com").rstrip("/")
        self.timeout_s = timeout_s
        self._transport = transport

    async def dial(self, to: str, from_: str, stream_url: str, params: dict[str, str]) -> str:
        for name, number in (("to", to), ("from_", from_)):
            if not _E164.match(number):
                raise TelephonyError(f"{name}={number!r} is not an E.164 number (+8613…)")
        if not stream_url.startswith(("wss://", "ws://")):
            raise TelephonyError(f"stream_url must be a ws:// or wss:// URL, got {stream_url!r}")
        url = f"{self.base_url}/2010-04-01/Accounts/{self.account_sid}/Calls.json"
        form = {"To": to, "From": from_, "Twiml": stream_twiml(stream_url, params)}
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s, transport=self._transport,
                                         auth=(self.account_sid, self.auth_token)) as client:
                resp = await client.post(url, data=form)
        except httpx.HTTPError as exc:
            raise TelephonyError(f"cannot reach Twilio at {self.base_url}: {exc}") from exc
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if resp.status_code >= 400:
            msg = body.get("message") if isinstance(body, dict) else None
            raise TelephonyError(f"Twilio refused the call ({resp.status_code}): "
                                 f"{msg or resp.text[:200]}", status=resp.status_code,
                                 code=body.get("code") if isinstance(body, dict) else None)
        sid = body.get("sid") if isinstance(body, dict) else None
        if not isinstance(sid, str) or not sid:
            raise TelephonyError("Twilio answered without a call sid", status=resp.status_code)
        return sid
