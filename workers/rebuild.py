"""Recompute every derived flag, bucket and risk figure from the stored events, with the current settings.

After an upgrade that adds derived figures (stored events keep neutral values until then) or a
change of a sequence rule or marker, `ecomrisk rebuild` brings the store to what ingesting its
events again would give. It recomputes a chunk of users at a time with the offline reference
(workers.reference), which the exactness properties hold equal to the incremental path, and
writes each chunk in one write transaction holding the store-wide lock, so live batches wait
for it rather than interleave. Alerts are history and stay as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import pandas as pd
from sqlalchemy import Engine, select

from config.settings import Settings
from contract.wire import now_ms
from store import writer
from store.db import write_transaction
from store.models import UserRisk
from store.rollups import rebuild_rollups_from_events
from workers.reference import recompute_buckets, recompute_flags, score_windows, users_from
from workers.sequence import BUCKET_FIELDS

_OWN = ("event_id", "user_id", "ts_ms", "utc_offset_min", "action", "amount_cents", "user_agent")


@dataclass(frozen=True, slots=True)
class RebuildReport:
    """What a rebuild rewrote."""

    users: int
    events: int

    def summary(self) -> str:
        """One line for the command line."""
        return f"rebuilt {self.users:,} users from {self.events:,} stored events, then every activity rollup"


def rebuild_store(engine: Engine, *, settings: Settings, users_per_chunk: int = 2_000) -> RebuildReport:
    """Recompute flags, buckets and user risk of every stored user, chunk by chunk, then the rollups."""
    with engine.connect() as conn:
        user_ids = list(conn.scalars(select(UserRisk.user_id).order_by(UserRisk.user_id)))
    events = 0
    for start in range(0, len(user_ids), users_per_chunk):
        chunk = user_ids[start : start + users_per_chunk]
        with write_transaction(engine) as conn:
            writer.lock_store(conn)
            stored = pd.DataFrame(writer.read_user_events(conn, chunk, _OWN), columns=list(_OWN))
            stored["amount_cents"] = stored["amount_cents"].astype("Int64")
            stored["utc_offset_min"] = stored["utc_offset_min"].astype("int64")
            events += len(stored)
            if stored.empty:
                continue
            flags = recompute_flags(stored, settings)
            buckets = recompute_buckets(flags, settings)
            scored, windows = score_windows(buckets, settings)
            risk = users_from(flags, buckets, windows)
            writer.update_event_flags(conn, _flag_rows(flags))
            bucket_rows = [
                (u, int(b), *(_plain(v) for v in row))
                for (u, b), row in zip(scored.index, scored.itertuples(index=False), strict=True)
            ]
            writer.replace_buckets(conn, BUCKET_FIELDS, chunk, bucket_rows)
            columns = ("user_id", *risk.columns, "markers", "updated_ms")
            at = now_ms()
            rows = [
                (
                    user_id,
                    *(_plain(v) for v in row),
                    orjson.dumps(windows[user_id]["current"].markers_json()).decode(),
                    at,
                )
                for user_id, row in zip(risk.index, risk.itertuples(index=False), strict=True)
            ]
            writer.upsert_user_risk(conn, columns, rows)
    rebuild_rollups_from_events(engine)
    return RebuildReport(len(user_ids), events)


def _flag_rows(flags: pd.DataFrame) -> list[tuple[Any, ...]]:
    frame = flags[[*writer.FLAG_COLUMNS, "event_id"]]  # update_event_flags' order
    return [tuple(_plain(v) for v in row) for row in frame.itertuples(index=False)]


def _plain(value: Any) -> Any:
    """A driver-ready value: no numpy scalars, None for missing."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    return value.item() if hasattr(value, "item") else value
