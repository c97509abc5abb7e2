"""Query-string times: ISO 8601, with offset (a bare date means its start in China time)."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from fastapi import HTTPException

DEFAULT_ZONE = ZoneInfo("Asia/Shanghai")


def parse_time(value: str, name: str) -> datetime:
    text = value.strip().replace(" ", "+") if value else value
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0), DEFAULT_ZONE)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise HTTPException(422, f"{name}: not an ISO 8601 time: {value!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=DEFAULT_ZONE)
    return parsed
