"""Alembic migrations build exactly the schema the models describe, and re-running them is a no-op."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from config.settings import Settings
from store.db import create_writer_engine, init_schema
from store.models import Base
from store.schema import current_revision, head_revision


def test_migrations_match_the_models_and_are_idempotent(settings: Settings) -> None:
    engine = create_writer_engine(settings.resolved_database_url)
    assert current_revision(engine) is None
    init_schema(engine)
    init_schema(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
