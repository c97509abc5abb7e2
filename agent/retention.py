"""Call recordings are kept for the configured retention period, then deleted.

The catalogue's ``recording_retention`` rule sets a floor (≥5 years by default in ``cn``);
lenders set ``HUIKUAN_RECORDINGS_RETENTION_DAYS``. The conversation keeps a note of the purge so a
supervisor sees why a recording is gone.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import Engine

from agent.store.db import session_scope
from agent.store.tables import Conversation


def purge_recordings(engine: Engine, data_dir: Path, retention_days: int, now: datetime) -> int:
    """Delete recordings of conversations that ended before the retention window; count them."""
    cutoff = now - timedelta(days=retention_days)
    root = Path(data_dir).resolve()
    purged = 0
    with session_scope(engine) as session:
        rows = session.execute(select(Conversation).where(Conversation.ended_at < cutoff)
                               ).scalars()
        for conversation in rows:
            legs = {k: v for k, v in (conversation.recordings or {}).items()
                    if isinstance(v, str) and v.endswith(".wav")}
            if not legs:
                continue
            for path in legs.values():
                file = Path(path).resolve()
                if file.is_relative_to(root) and file.exists():
                    file.unlink()
                    purged += 1
            conversation.recordings = {"purged_at": now.isoformat(),
                                       "retention_days": retention_days}
    return purged
