"""`ecomrisk evaluate --source reviews`: precision per band, kind and marker from analyst labels.

The expected figures are counted here from the stored alerts and the labels given, with plain
Python, not by the pandas function under test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict

from sqlalchemy import select

from config.settings import Settings
from contract.wire import RawBatch, now_ms
from store.db import open_writer
from store.models import Alert
from store.reviews import record_review
from tests.api.support import traffic
from tests.support import REPO_ROOT, settings_env
from workers.ingest import ingest_batch

USERS = {
    **{f"bot-{n}": "bot" for n in range(5)},
    **{f"imp-{n}": "impulsive" for n in range(4)},
    **{f"norm-{n}": "normal" for n in range(3)},
}
TRUE = {"confirmed_automation", "confirmed_harm"}


def test_precision_from_reviews(db_settings: Settings) -> None:
    engine = open_writer(db_settings)
    ingest_batch(engine, RawBatch("seed", "\n".join(traffic(USERS)), "test"), settings=db_settings)
    with engine.connect() as conn:
        alerts = conn.execute(
            select(Alert.id, Alert.user_id, Alert.band, Alert.risk_kind, Alert.reasons)
        ).all()
    assert len(alerts) == 9
    # A label per alert by a rule of its own; some alerts are only acknowledged, one is relabelled.
    final: dict[int, str] = {}
    at = now_ms()
    for n, alert in enumerate(sorted(alerts)):
        if n % 4 == 3:
            record_review(engine, alert_id=alert.id, status="acknowledged", label=None, note=None,
                          reviewer="a", at_ms=at)  # fmt: skip
            continue
        label = (
            ("confirmed_automation" if alert.risk_kind == "automation" else "confirmed_harm")
            if n % 3
            else "false_positive"
        )
        if n == 1:  # first called a false positive, then confirmed: the latest review counts
            record_review(engine, alert_id=alert.id, status="resolved", label="false_positive", note=None,
                          reviewer="a", at_ms=at)  # fmt: skip
        record_review(
            engine, alert_id=alert.id, status="resolved", label=label, note=None, reviewer="b", at_ms=at + 1
        )
        final[alert.id] = label
    expected: dict[str, dict[str, list[int]]] = {"by_band": defaultdict(lambda: [0, 0]),
                                                 "by_kind": defaultdict(lambda: [0, 0]),
                                                 "by_marker": defaultdict(lambda: [0, 0])}  # fmt: skip
    for alert in alerts:
        if alert.id not in final:
            continue
        slot = 0 if final[alert.id] in TRUE else 1
        expected["by_band"][alert.band][slot] += 1
        expected["by_kind"][alert.risk_kind][slot] += 1
        for marker in alert.reasons:
            expected["by_marker"][marker["name"]][slot] += 1
    engine.dispose()

    figures = db_settings.data_dir / "reviews.json"
    printed = subprocess.run(
        [sys.executable, "-m", "cli.main", "evaluate", "--source", "reviews", "--json", str(figures)],
        env=settings_env(db_settings) | {"COLUMNS": "200"}, cwd=REPO_ROOT, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert printed.returncode == 0, printed.stderr
    got = json.loads(figures.read_text())
    true_positives = sum(label in TRUE for label in final.values())
    assert (got["labelled"], got["true_positives"], got["false_positives"]) == (
        len(final), true_positives, len(final) - true_positives,
    )  # fmt: skip
    for table, counts in expected.items():
        assert {
            name: (row["true_positives"], row["false_positives"]) for name, row in got[table].items()
        } == {name: (tp, fp) for name, (tp, fp) in counts.items()}
        for name, (tp, fp) in counts.items():
            assert got[table][name]["precision"] == tp / (tp + fp)
    assert got["false_positives"] > 0 and got["true_positives"] > 0  # the rule above gives both

    assert f"{len(final)} labelled alerts" in printed.stdout
    assert all(name in printed.stdout for name in expected["by_marker"])
