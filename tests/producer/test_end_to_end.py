"""Producer output through a real Celery worker: the expected outcomes are the stored ones."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from datetime import datetime
from itertools import pairwise
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, text

from config.settings import Settings
from contract.wire import broker_client
from producer.delivery import Outcome
from producer.faults import LINE_FAULTS, FaultRates
from producer.generator import plan_run, run_generator
from producer.importer import import_file
from producer.labels import LabelWriter
from producer.mapping import load_preset
from producer.publisher import Publisher
from tests.support import REES46_SAMPLE, celery_worker, wait_until

REES46 = REES46_SAMPLE

pytestmark = pytest.mark.integration


def ledger(settings: Settings, prefix: str) -> tuple[int, int, int, Counter[str]]:
    """Batches committed, events stored new, duplicates, and quarantine reasons for a batch prefix."""
    engine = create_engine(settings.resolved_database_url)
    with engine.connect() as conn:
        batches, stored, duplicates = conn.execute(
            text(
                "select count(*), coalesce(sum(stored_new), 0), coalesce(sum(duplicates), 0)"
                " from batches where batch_id like :p"
            ),
            {"p": f"{prefix}%"},
        ).one()
        reasons = conn.execute(
            text("select reason, count(*) from quarantine where batch_id like :p group by reason"),
            {"p": f"{prefix}%"},
        ).all()
    engine.dispose()
    return batches, stored, duplicates, Counter(dict(reasons))


def drained(settings: Settings) -> bool:
    """Nothing waiting and nothing delivered but unacknowledged (acks come after the commit)."""
    client = redis.Redis.from_url(settings.redis_url or "")
    return client.llen(settings.queue_name) == 0 and client.hlen("unacked") == 0


def committed(settings: Settings, prefix: str, batches: int) -> bool:
    try:
        return ledger(settings, prefix)[0] == batches
    except Exception:  # the worker creates the schema on its first batch
        return False


def rapid_count_in_file(path: Path, rapid_gap_s: int = 2) -> int:
    """Rapid events counted straight from the CSV: per user, sorted times, gaps under 2 s."""
    times: dict[str, list[datetime]] = defaultdict(list)
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            times[row["user_id"]].append(datetime.strptime(row["event_time"], "%Y-%m-%d %H:%M:%S UTC"))
    rapid = 0
    for moments in times.values():
        moments.sort()
        rapid += sum((b - a).total_seconds() < rapid_gap_s for a, b in pairwise(moments))
    return rapid


def stored_rapid(settings: Settings, prefix: str) -> int:
    engine = create_engine(settings.resolved_database_url)
    with engine.connect() as conn:
        count = conn.execute(
            text("select count(*) from events where is_rapid and batch_id like :p"), {"p": f"{prefix}%"}
        ).scalar_one()
    engine.dispose()
    return int(count)


def test_worker_outcomes_equal_the_expected_ones(live_settings: Settings) -> None:
    settings = live_settings.model_copy(update={"batch_size": 400})
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    publisher = Publisher(broker_client(settings), settings)
    rates = FaultRates().with_rates({f.value: 0.01 for f in LINE_FAULTS})
    rates = rates.with_rates({"duplicate": 0.02, "out_of_order": 0.02})
    config = plan_run(settings, count=4000, seed=31, rates=rates)
    run = run_generator(config, publisher=publisher, labels=LabelWriter(settings.labels_path), progress=False)
    first = import_file(REES46, publisher, batch_size=2000, mapping=load_preset("rees46"), progress=False)

    with celery_worker(settings, concurrency=2):
        wait_until(lambda: committed(settings, "gen-", run.batches), timeout_s=120, what="run")
        wait_until(lambda: committed(settings, "imp-", first.batches), timeout_s=120, what="import")
        _, stored, duplicates, reasons = ledger(settings, "gen-")
        assert stored == run.expected[Outcome.STORED]
        assert duplicates == run.expected[Outcome.DUPLICATE]
        assert reasons == Counter({k: n for k, n in run.expected.items() if k not in set(Outcome)})

        with REES46.open(newline="", encoding="utf-8") as fh:
            rows = sum(1 for _ in csv.DictReader(fh))
        assert ledger(settings, "imp-")[1:] == (rows, 0, Counter())  # identical rows kept apart
        assert stored_rapid(settings, "imp-") == rapid_count_in_file(REES46)

        # The same file again: same batch ids, already committed, so nothing changes.
        again = import_file(REES46, publisher, batch_size=2000, mapping=load_preset("rees46"), progress=False)
        assert (again.first_batch, again.last_batch) == (first.first_batch, first.last_batch)
        wait_until(lambda: drained(settings), timeout_s=120, what="the re-import to be acked")
        assert ledger(settings, "imp-")[1:] == (rows, 0, Counter())
