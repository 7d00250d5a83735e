"""The API against a real `ecomrisk api` process and a store seeded through the pipeline (SQLite, PostgreSQL).

Every expected figure is read from the store the worker wrote, never typed in.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import Engine, func, select

from cli.redis_server import RedisProcess
from config.settings import Settings
from store.db import create_reader_engine
from store.models import Alert, Event, UserRisk
from tests.api.support import (
    READ_TOKEN,
    TOKENS,
    api_server,
    client,
    iso,
    prepare_store,
    publish,
    traffic,
    wait_for_batches,
    wait_until,
)
from tests.support import BACKENDS, PostgresServer, celery_worker

pytestmark = pytest.mark.integration

# A user id that needs percent-encoding in a path, and sorts among the others.
ODD_USER = "bot/ä 1?x"
USERS = {
    **{f"bot-{n}": "bot" for n in range(4)},
    ODD_USER: "bot",
    **{f"imp-{n}": "impulsive" for n in range(4)},
    **{f"norm-{n:02d}": "normal" for n in range(12)},
}


@dataclass(frozen=True)
class Seeded:
    """A store seeded through the pipeline, its worker still running, and the API over it."""

    settings: Settings
    url: str
    engine: Engine


@pytest.fixture(scope="module", params=BACKENDS)
def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, redis_server: RedisProcess
) -> Iterator[Seeded]:
    tmp = tmp_path_factory.mktemp(f"api-{request.param}")
    with ExitStack() as stack:
        if request.param == "sqlite":
            database_url = f"sqlite:///{tmp / 'api.db'}"
        else:
            postgres: PostgresServer = request.getfixturevalue("postgres")
            database_url = stack.enter_context(postgres.schema())
        settings = Settings(
            data_dir=tmp / "data",
            database_url=database_url,
            redis_url=redis_server.url,
            queue_name=f"api-{tmp.name}",
            api_tokens=TOKENS,
        )
        prepare_store(settings)
        stack.enter_context(celery_worker(settings, name=f"api-{request.param}"))
        lines = traffic(USERS)
        # Two batches that split users' histories: the second half of every user comes later.
        half = len(lines) // 2
        wait_for_batches(settings, publish(settings, [lines[:half], lines[half:]]))
        url = stack.enter_context(api_server(settings))
        engine = create_reader_engine(settings.resolved_database_url)
        stack.callback(engine.dispose)
        yield Seeded(settings, url, engine)


def stored_users(engine: Engine) -> list[UserRisk]:
    with engine.connect() as conn:
        return list(conn.execute(select(UserRisk.__table__)).mappings())  # type: ignore[arg-type]


def test_openapi_schema_is_served(seeded: Seeded) -> None:
    with client(seeded.url, token=None) as http:
        schema = http.get("/api/v1/openapi.json").json()
    for path in (
        "/api/v1/users",
        "/api/v1/users/{user_id}",
        "/api/v1/users/{user_id}/events",
        "/api/v1/alerts",
        "/api/v1/alerts/{alert_id}/review",
        "/api/v1/health",
    ):
        assert path in schema["paths"]
    assert "UserRisk" in schema["components"]["schemas"]


@pytest.mark.parametrize(
    ("token", "status"), [(None, 401), ("not-a-token", 401), (READ_TOKEN[:-1], 401), (READ_TOKEN, 200)]
)
def test_reads_need_a_valid_token(seeded: Seeded, token: str | None, status: int) -> None:
    with client(seeded.url, token=token) as http:
        response = http.get("/api/v1/users", params={"limit": 1})
    assert response.status_code == status
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"]["status"] == 401
        assert "traceback" not in response.text.lower()


def test_a_read_only_token_cannot_review(seeded: Seeded) -> None:
    with client(seeded.url, token=READ_TOKEN) as http:
        alert_id = http.get("/api/v1/alerts", params={"limit": 1}).json()["items"][0]["alert_id"]
        response = http.post(f"/api/v1/alerts/{alert_id}/review", json={"status": "acknowledged"})
    assert response.status_code == 403
    assert "'bi'" in response.json()["error"]["message"]


def test_user_matches_the_stored_risk_row(seeded: Seeded) -> None:
    rows = {r["user_id"]: r for r in stored_users(seeded.engine)}
    assert set(rows) == set(USERS)
    with client(seeded.url) as http:
        for user_id, row in rows.items():
            got = http.get(f"/api/v1/users/{quote(user_id, safe='')}").json()
            assert (got["user_id"], got["score"], got["band"], got["kind"]) == (
                user_id,
                row["score"],
                row["band"],
                row["risk_kind"],
            )
            assert [(m["name"], m["value"], m["threshold"], m["weight"]) for m in got["markers"]] == [
                (m["name"], m["value"], m["threshold"], m["weight"]) for m in row["markers"]
            ]
            assert (got["events"], got["first_seen_ms"], got["last_seen_ms"]) == (
                row["events"],
                row["first_seen_ms"],
                row["last_seen_ms"],
            )
            assert got["allow_listed_until_ms"] is None
    # The crafted behaviours land where the rules put them: bots automation, impulsive users
    # loss of control, both high; normal users low.
    assert {rows[u]["risk_kind"] for u, b in USERS.items() if b == "bot"} == {"automation"}
    assert {rows[u]["risk_kind"] for u, b in USERS.items() if b == "impulsive"} == {"loss_of_control"}
    assert {rows[u]["band"] for u, b in USERS.items() if b != "normal"} == {"high"}
    assert {rows[u]["band"] for u, b in USERS.items() if b == "normal"} == {"low"}


def test_unknown_user_is_404_json(seeded: Seeded) -> None:
    with client(seeded.url) as http:
        for path in ("/api/v1/users/nobody", "/api/v1/users/nobody/events", "/api/v1/users/nobody/reviews"):
            response = http.get(path)
            assert response.status_code == 404
            assert response.json()["error"]["message"] == "no user 'nobody' is stored"


def page_through(http: object, path: str, **params: object) -> list[dict[str, object]]:
    """Every item of a keyset-paged listing, following next_cursor to the end."""
    items: list[dict[str, object]] = []
    cursor = None
    for _ in range(1_000):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = http.get(path, params=query).json()  # type: ignore[attr-defined]
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the listing never ended")


def test_users_page_to_the_end_in_index_order(seeded: Seeded) -> None:
    rows = stored_users(seeded.engine)
    by_score = sorted(rows, key=lambda r: (r["score"], r["user_id"]), reverse=True)
    by_seen = sorted(rows, key=lambda r: (r["last_seen_ms"], r["user_id"]), reverse=True)
    high = [r for r in by_score if r["band"] == "high"]
    bots = [r for r in by_score if r["band"] == "high" and r["risk_kind"] == "automation"]
    since = sorted(r["last_seen_ms"] for r in rows)[len(rows) // 2]
    recent = [r for r in by_seen if r["last_seen_ms"] >= since]
    with client(seeded.url) as http:
        assert [u["user_id"] for u in page_through(http, "/api/v1/users", limit=3)] == [
            r["user_id"] for r in by_score
        ]
        assert [u["user_id"] for u in page_through(http, "/api/v1/users", limit=4, sort="last_seen")] == [
            r["user_id"] for r in by_seen
        ]
        assert [u["user_id"] for u in page_through(http, "/api/v1/users", band="high", limit=2)] == [
            r["user_id"] for r in high
        ]
        listed = page_through(http, "/api/v1/users", band="high", kind="automation", limit=2)
        assert [u["user_id"] for u in listed] == [r["user_id"] for r in bots]
        listed = page_through(http, "/api/v1/users", since=iso(since), sort="last_seen", limit=5)
        assert [u["user_id"] for u in listed] == [r["user_id"] for r in recent]
        one_page = http.get("/api/v1/users", params={"limit": 500}).json()
    assert one_page["next_cursor"] is None and len(one_page["items"]) == len(rows)


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 501},
        {"limit": "many"},
        {"band": "purple"},
        {"kind": "robot"},
        {"sort": "random"},
        {"since": "yesterday"},
        {"since": "2026-01-01T00:00:00"},  # no offset
        {"cursor": "garbage!"},
    ],
)
def test_bad_user_list_parameters_are_422_json(seeded: Seeded, params: dict[str, object]) -> None:
    with client(seeded.url) as http:
        response = http.get("/api/v1/users", params=params)
    assert response.status_code == 422
    body = response.json()["error"]
    assert body["status"] == 422 and body["message"]


def test_a_cursor_of_another_listing_is_refused(seeded: Seeded) -> None:
    with client(seeded.url) as http:
        cursor = http.get("/api/v1/users", params={"limit": 1, "sort": "last_seen"}).json()["next_cursor"]
        response = http.get("/api/v1/users", params={"limit": 1, "cursor": cursor})  # sort=score
        alerts = http.get("/api/v1/alerts", params={"cursor": cursor})
    assert response.status_code == 422 and "users:score" in response.json()["error"]["message"]
    assert alerts.status_code == 422


def test_events_are_the_newest_with_their_flags(seeded: Seeded) -> None:
    user_id = ODD_USER
    with seeded.engine.connect() as conn:
        stored = conn.execute(
            select(Event.event_id, Event.ts_ms, Event.gap_ms, Event.is_rapid, Event.session_no)
            .where(Event.user_id == user_id)
            .order_by(Event.ts_ms.desc(), Event.event_id.desc())
        ).all()
    with client(seeded.url) as http:
        got = http.get(f"/api/v1/users/{quote(user_id, safe='')}/events", params={"limit": 5}).json()
        everything = http.get(f"/api/v1/users/{quote(user_id, safe='')}/events", params={"limit": 500}).json()
        too_many = http.get(f"/api/v1/users/{quote(user_id, safe='')}/events", params={"limit": 501})
    assert [
        (e["event_id"], e["ts_ms"], e["gap_ms"], e["is_rapid"], e["session_no"]) for e in got["items"]
    ] == [(r.event_id, r.ts_ms, r.gap_ms, bool(r.is_rapid), r.session_no) for r in stored[:5]]
    assert len(everything["items"]) == len(stored)
    assert too_many.status_code == 422


def test_alerts_review_flow_and_history(seeded: Seeded) -> None:
    with seeded.engine.connect() as conn:
        alert_ids = sorted(conn.scalars(select(Alert.id)), reverse=True)
        alerted_users = set(conn.scalars(select(Alert.user_id)))
    assert alerted_users == {u for u, b in USERS.items() if b != "normal"}  # one alert per crossing
    with client(seeded.url) as http, client(seeded.url, token=READ_TOKEN) as reader:
        before = page_through(reader, "/api/v1/alerts", limit=3)
        open_before = page_through(reader, "/api/v1/alerts", status="open", limit=3)
        first, second = alert_ids[0], alert_ids[1]
        acked = http.post(
            f"/api/v1/alerts/{first}/review", json={"status": "acknowledged", "note": "looking"}
        )
        resolved = http.post(
            f"/api/v1/alerts/{first}/review",
            json={"status": "resolved", "label": "confirmed_automation", "note": "bot farm"},
        )
        http.post(f"/api/v1/alerts/{second}/review", json={"status": "acknowledged"})
        open_after = page_through(reader, "/api/v1/alerts", status="open", limit=3)
        acked_list = page_through(reader, "/api/v1/alerts", status="acknowledged")
        resolved_list = page_through(reader, "/api/v1/alerts", status="resolved")
        detail = reader.get(f"/api/v1/alerts/{first}").json()
        missing = http.post("/api/v1/alerts/999999/review", json={"status": "acknowledged"})
        bad = [
            http.post(f"/api/v1/alerts/{first}/review", json=body)
            for body in (
                {"status": "closed"},
                {"status": "acknowledged", "label": "false_positive"},
                {"status": "resolved", "label": "maybe"},
                {"status": "resolved", "label": "confirmed_harm", "allow_list_days": 3},
                {"status": "acknowledged", "extra": 1},
                {},
            )
        ]
        bad_status = reader.get("/api/v1/alerts", params={"status": "pending"})
    assert [a["alert_id"] for a in before] == alert_ids
    assert [a["alert_id"] for a in open_before] == alert_ids
    assert acked.status_code == 201 and resolved.status_code == 201
    assert resolved.json()["alert"]["status"] == "resolved"
    assert resolved.json()["review"]["reviewer"] == "ops"  # the token's name
    assert [a["alert_id"] for a in open_after] == alert_ids[2:]
    assert [a["alert_id"] for a in acked_list] == [second]
    assert [(a["alert_id"], a["label"]) for a in resolved_list] == [(first, "confirmed_automation")]
    assert [(r["status"], r["label"], r["note"]) for r in detail["reviews"]] == [
        ("acknowledged", None, "looking"),
        ("resolved", "confirmed_automation", "bot farm"),
    ]
    assert missing.status_code == 404
    assert [r.status_code for r in bad] == [422] * len(bad)
    assert bad_status.status_code == 422


def test_allow_list_needs_a_false_positive_resolution(seeded: Seeded) -> None:
    with seeded.engine.connect() as conn:  # the oldest alert: the review-flow test leaves it alone
        alert_id, user_id = conn.execute(select(Alert.id, Alert.user_id).order_by(Alert.id).limit(1)).one()
    path = f"/api/v1/users/{quote(user_id, safe='')}"
    with client(seeded.url) as http:
        early = http.post(f"{path}/allow-list", json={"days": 7})
        http.post(f"/api/v1/alerts/{alert_id}/review", json={"status": "resolved", "label": "false_positive"})
        entry = http.post(f"{path}/allow-list", json={"days": 7, "note": "test account"})
        user = http.get(path).json()
        history = http.get(f"{path}/reviews").json()
        unknown = http.post("/api/v1/users/nobody/allow-list", json={})
    assert early.status_code == 409
    assert entry.status_code == 201
    assert user["allow_listed_until_ms"] == entry.json()["expires_ms"]
    assert entry.json()["expires_ms"] - entry.json()["created_ms"] == 7 * 86_400_000
    assert [(r["alert_id"], r["label"]) for r in history["items"]] == [(alert_id, "false_positive")]
    assert unknown.status_code == 404


def test_health_reports_store_broker_workers_and_lag(seeded: Seeded) -> None:
    with seeded.engine.connect() as conn:
        newest = conn.scalar(select(func.max(Event.ts_ms)))
    with client(seeded.url, token=READ_TOKEN) as http:
        # The Redis probes answer from a background refresh: the first call may find them unchecked.
        health = wait_until(
            lambda: (h := http.get("/api/v1/health").json())["workers_online"] and h,
            timeout_s=30,
            what="the health probes",
        )
    assert health["status"] == "ok"
    assert health["store"]["ok"] is True and health["broker"]["ok"] is True
    assert health["queue_depth"] == 0
    assert len(health["workers_online"]) == 1
    assert health["last_commit_ms"] is not None
    assert health["event_lag_ms"] is not None and newest is not None
    assert health["webhook_dead_letters"] == 0


def test_the_api_refuses_a_public_bind_without_tokens(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ECOMRISK_API_TOKENS"):
        Settings(api_host="0.0.0.0", data_dir=tmp_path)
