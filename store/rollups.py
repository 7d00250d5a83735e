"""Rebuild the small all-time activity rollups from the per-minute rollup (seeding stores).

The minute rollup is keyed by UTC minute, so the hours come out right for events written in
UTC (offset 0), as seeded stores are; ingest keys activity_hours by each event's local time.
"""

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


# Every rollup from the stored events and their flags: minute rows, the mix, the local hours.
_FROM_EVENTS = (
    "DELETE FROM activity_rollup",
    "INSERT INTO activity_rollup (minute_ms, action, category, events, rapid)"
    " SELECT ts_ms - ts_ms % 60000, action, COALESCE(category, ''), COUNT(*),"
    " SUM(CASE WHEN is_rapid THEN 1 ELSE 0 END) FROM events GROUP BY 1, 2, 3",
    _REBUILD[0],
    _REBUILD[1],
    "DELETE FROM activity_hours",
    "INSERT INTO activity_hours (weekday, hour, events)"
    " SELECT ((ts_ms + utc_offset_min * 60000) / 3600000 / 24 + 3) % 7,"
    " ((ts_ms + utc_offset_min * 60000) / 3600000) % 24, COUNT(*) FROM events GROUP BY 1, 2",
)


def rebuild_rollups_from_events(engine: Engine) -> None:
    """Recompute every activity rollup from the stored events, in one transaction (after a rebuild)."""
    with write_transaction(engine) as conn:
        hold_locks(conn, "store", ["all"])
        for statement in _FROM_EVENTS:
            conn.execute(text(statement))
