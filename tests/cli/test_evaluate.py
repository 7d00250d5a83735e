"""`ecomrisk evaluate` end to end: a stored run against its labels file, printed and as JSON."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from config.settings import Settings
from contract.wire import RawBatch
from producer.generator import generate_batches, plan_run
from producer.labels import LabelWriter
from store.db import create_writer_engine, init_schema
from workers.evaluation import JudgedAt, evaluate, load_labels, load_predictions
from workers.ingest import ingest_batch

ECOMRISK = str(Path(sys.executable).with_name("ecomrisk"))


def test_evaluate_prints_every_sub_type_and_writes_the_same_figures_as_json(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'e.db'}")
    engine = create_writer_engine(settings.resolved_database_url)
    init_schema(engine)
    labels = LabelWriter(settings.labels_path)
    config = plan_run(settings, count=20_000, seed=5)
    for batch in generate_batches(config, count=20_000):
        labels.write(batch.new_users)
        raw = "\n".join(batch.texts)
        ingest_batch(engine, RawBatch(batch.batch_id, raw, "test"), settings=settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECOMRISK_")}
    env.update(
        {"ECOMRISK_DATA_DIR": str(settings.data_dir), "ECOMRISK_DATABASE_URL": settings.resolved_database_url}
    )
    out = tmp_path / "figures.json"
    result = subprocess.run(
        [ECOMRISK, "evaluate", "--json", str(out)], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    with settings.labels_path.open(newline="", encoding="utf-8") as fh:
        per_sub_type = Counter(row["sub_type"] for row in csv.DictReader(fh))
    assert "Per sub-type" in result.stdout and "Score distribution by persona" in result.stdout
    for name in per_sub_type:
        assert name in result.stdout
    figures = json.loads(out.read_text(encoding="utf-8"))
    assert {row["sub_type"]: row["users"] for row in figures["by_sub_type"]} == dict(per_sub_type)
    truth = load_labels(settings.labels_path)
    expected = {
        "judged_at": "peak",
        **evaluate(truth, load_predictions(engine, settings)).to_dict(),
        "current": evaluate(truth, load_predictions(engine, settings, at=JudgedAt.CURRENT)).headline(),
    }
    assert figures == json.loads(json.dumps(expected))
