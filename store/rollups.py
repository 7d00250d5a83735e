"""Rebuild the small all-time activity rollups from the per-minute rollup (seeding, repair)."""

from __future__ import annotations

from sqlalchemy import Engine, text

from store.db import hold_locks, write_transaction

# Integer division on both SQLite and PostgreSQL; 1970-01-01 was a Thursday (weekday 3).
_REBUILD = (
    "DELETE FROM activity_mix",
    "INSERT INTO activity_mix (action, category, events, rapid)"
    " SELECT action, category, SUM(events), SUM(rapid) FROM activity_rollup GROUP BY action, category",
    "DELETE FROM activity_hours",
    "INSERT INTO activity_hours (weekday, hour, events)"
    " SELECT (minute_ms / 3600000 / 24 + 3) % 7, (minute_ms / 3600000) % 24, SUM(events)"
    " FROM activity_rollup GROUP BY 1, 2",
)


def rebuild_activity_summaries(engine: Engine) -> None:
    """Recompute activity_mix and activity_hours from activity_rollup in one transaction."""
    with write_transaction(engine) as conn:
        hold_locks(conn, "store", ["all"])  # exclusive, as a many-user batch: no batch writes meanwhile
        for statement in _REBUILD:
            conn.execute(text(statement))
