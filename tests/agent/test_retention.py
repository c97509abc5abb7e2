"""Recordings are deleted after the retention period, and only inside the data directory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.bootstrap import Services
from agent.retention import purge_recordings
from agent.store.db import session_scope
from agent.store.tables import Borrower, Conversation

pytestmark = pytest.mark.db


def test_old_recordings_purged_recent_kept(services: Services, tmp_path: Path) -> None:
    data = services.settings.data_dir
    now = datetime(2026, 11, 25, tzinfo=UTC)
    files = {}
    for name in ("old", "new"):
        path = data / "recordings" / f"{name}-caller.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"RIFF")
        files[name] = path
    outside = tmp_path / "outside.wav"
    outside.write_bytes(b"RIFF")
    with session_scope(services.engine) as session:
        session.add(Borrower(id="B1", name="张伟", phone="13812345678"))
        session.flush()
        for name, age in (("old", 400), ("new", 10)):
            ended = now - timedelta(days=age)
            session.add(Conversation(id=name, channel="voice", borrower_id="B1",
                                     started_at=ended, ended_at=ended,
                                     recordings={"caller": str(files[name]),
                                                 "agent": str(outside)}))
    assert purge_recordings(services.engine, data, 365, now) == 1
    assert not files["old"].exists() and files["new"].exists() and outside.exists()
    with session_scope(services.engine) as session:
        assert session.get(Conversation, "old").recordings["retention_days"] == 365
        assert session.get(Conversation, "new").recordings["caller"] == str(files["new"])
