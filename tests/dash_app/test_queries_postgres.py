"""The dashboard's read-only queries on PostgreSQL: the SQLite suite's dialect-neutral tests, re-run.

Every test imported below runs here against a fresh PostgreSQL schema seeded by the same code,
read through the PostgreSQL reader engine (READ ONLY transactions). The SQLite-only tests (no
database file, an empty file, EXPLAIN QUERY PLAN) have PostgreSQL counterparts below.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from dash_app import queries as q
from tests.dash_app.seed import NOW_MS, Facts
from tests.dash_app.test_queries import (  # noqa: F401  (collected again, on PostgreSQL)
    ALL_QUERIES,
    test_activity_heatmap,
    test_activity_mix,
    test_activity_mix_keeps_the_busiest_categories,
    test_alerts_newest_first_with_reason_names,
    test_empty_schema_gives_empty_results_without_problem,
    test_empty_schema_values,
    test_events_per_second_window_edges,
    test_kpis,
    test_latest_quarantined_cuts_long_lines_in_sql,
    test_latest_quarantined_keeps_raw_text_verbatim,
    test_pipeline_stats,
    test_quarantine_counts_by_reason_and_minute,
    test_quarantine_counts_window,
    test_risk_page_default_sort_is_score_descending,
    test_risk_page_filters,
    test_risk_page_limit_is_capped,
    test_risk_page_paging,
    test_risk_page_sorting,
    test_risk_page_ties_are_broken_by_user_id,
    test_risk_page_top_markers_are_heaviest_first,
    test_timeline_covers_the_last_minutes_of_event_time,
    test_timeline_window_is_configurable,
    test_user_detail,
    test_user_detail_keeps_only_the_newest_events,
    test_user_detail_of_unknown_user,
    test_user_detail_sessions,
    test_user_detail_with_same_timestamps_is_ordered_by_event_id,
)


@pytest.fixture()
def db_url(postgres_url: str) -> str:
    """A fresh PostgreSQL schema instead of the SQLite file."""
    return postgres_url


def test_reader_transactions_are_read_only(seeded: Facts, reader: Engine) -> None:
    with reader.connect() as conn, pytest.raises(DBAPIError, match="read-only transaction"):
        conn.execute(text("DELETE FROM user_risk"))
    assert q.fetch_kpis(engine=reader, now_ms=NOW_MS).users == 6  # a later refresh still reads


@pytest.mark.parametrize("name", sorted(ALL_QUERIES))
def test_unreachable_server_is_a_sentence_not_an_error(name: str) -> None:
    from store.db import create_reader_engine

    engine = create_reader_engine("postgresql+psycopg://postgres@127.0.0.1:1/test")  # nothing listens
    result = ALL_QUERIES[name](engine)
    assert result.problem is not None and result.problem.startswith("Cannot read the database at postgresql")


def test_schema_without_tables_names_the_missing_table(reader: Engine) -> None:
    problem = q.fetch_kpis(engine=reader, now_ms=NOW_MS).problem
    assert problem is not None and "has no table batches yet" in problem


@pytest.mark.parametrize(
    ("query", "index"),
    [
        ("SELECT user_id FROM user_risk ORDER BY score DESC, user_id DESC", "ix_user_risk_score"),
        ("SELECT user_id FROM user_risk ORDER BY last_seen_ms ASC, user_id", "ix_user_risk_last_seen"),
        (
            "SELECT ts_ms FROM events WHERE user_id = 'bot-001' ORDER BY ts_ms DESC, event_id DESC",
            "ix_events_user_ts",
        ),
    ],
)
def test_ordered_reads_can_walk_their_index(seeded: Facts, reader: Engine, query: str, index: str) -> None:
    with reader.begin() as conn:
        # A seeded table is tiny, so make the planner show whether the index serves the ORDER BY.
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        conn.execute(text("SET LOCAL enable_sort = off"))
        plan = "\n".join(conn.scalars(text(f"EXPLAIN {query} LIMIT 50 OFFSET 100")))
    assert f"using {index}" in plan and "Sort" not in plan, plan
