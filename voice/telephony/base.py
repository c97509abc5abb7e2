"""What the service needs from a telephony provider: place a call that streams to us."""

from __future__ import annotations

from typing import Protocol


class TelephonyError(RuntimeError):
    """The provider refused or could not be reached; ``status`` is the HTTP status if any."""

    def __init__(self, message: str, status: int | None = None, code: int | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


class TelephonyProvider(Protocol):
    async def dial(self, to: str, from_: str, stream_url: str, params: dict[str, str]) -> str:
        """Place an outbound call whose audio streams to ``stream_url``; returns the call id."""
        ...
