"""Alembic migrations build exactly the schema the models describe, and re-running them is a no-op."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, select, text

from bench.synthetic import fill_required
from config.settings import Settings
from store.db import create_writer_engine, init_schema
from store.models import Base, Event, UserRisk
from store.schema import alembic_config, current_revision, head_revision, upgrade_schema


def test_migrations_match_the_models_and_are_idempotent(db_settings: Settings) -> None:
    engine = create_writer_engine(db_settings.resolved_database_url)
    assert current_revision(engine) is None
    init_schema(engine)
    init_schema(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    engine.dispose()


def test_identifiers_sort_by_code_point_like_the_offline_reference(db_settings: Settings) -> None:
    engine = create_writer_engine(db_settings.resolved_database_url)
    init_schema(engine)
    ids = ["b", "B", "a-2", "a_1", "a", "Z", "é", "e", "10", "9", "ü", " x"]
    with engine.begin() as conn:
        conn.execute(insert(UserRisk), [fill_required(UserRisk, {"user_id": u, "markers": []}) for u in ids])
    with engine.connect() as conn:
        stored = list(conn.scalars(select(UserRisk.user_id).order_by(UserRisk.user_id)))
    assert stored == sorted(ids)  # pandas sorts str by code point, as Python does
    if engine.dialect.name == "postgresql":  # whatever the database's own collation is
        with engine.connect() as conn:
            collations = conn.execute(
                text(
                    "SELECT table_name, column_name, collation_name FROM information_schema.columns"
                    " WHERE table_schema = current_schema() AND column_name IN ('event_id', 'user_id')"
                    " AND table_name IN ('events', 'user_risk') ORDER BY 1, 2"
                )
            ).all()
        assert [tuple(c) for c in collations] == [
            ("events", "event_id", "C"),
            ("events", "user_id", "C"),
            ("user_risk", "user_id", "C"),
        ]
    engine.dispose()


def test_slimmer_events_keep_every_row_and_a_downgrade_restores_the_gap_in_seconds(
    db_settings: Settings,
) -> None:
    """Migration 0008 drops gap_s and the stored bet steps; the events and their indexes stay."""
    engine = create_writer_engine(db_settings.resolved_database_url)
    upgrade_schema(engine, "0007")
    row = {
        "event_id": "e1", "user_id": "u1", "action": "purchase", "amount_cents": 1999, "ts_ms": 1_000,
        "content_hash": "0" * 32, "batch_id": "b", "line_no": 1, "ingested_ms": 2_000, "gap_ms": 1500,
        "gap_s": 1.5, "is_rapid": True, "is_steady": False, "session_no": 1, "burst_len": 1,
        "open_stake": 1999, "last_bet_ms": 1_000,
    }  # fmt: skip
    with engine.begin() as conn:
        conn.execute(
            text(f"INSERT INTO events ({', '.join(row)}) VALUES ({', '.join(':' + k for k in row)})"), row
        )
    upgrade_schema(engine)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        kept = conn.execute(select(Event.event_id, Event.gap_ms, Event.amount_cents)).all()
    assert [tuple(r) for r in kept] == [("e1", 1500, 1999)]
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0007")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT gap_s, open_stake FROM events")).one() == (1.5, None)
    engine.dispose()
