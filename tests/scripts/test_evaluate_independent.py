"""The per-behaviour judgement of scripts/evaluate_independent.py follows `ecomrisk evaluate`'s rule."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pandas as pd

from workers.evaluation import evaluate, load_labels

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "evaluate_independent.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("evaluate_independent", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


script = load_script()

# user, persona, behaviour, peak band, peak kind, current band, current kind (None: nothing stored)
USERS = [
    ("n1", "normal", "shopper", "low", "none", "low", "none"),
    ("n2", "normal", "shopper", "high", "loss_of_control", "elevated", "loss_of_control"),
    ("n3", "normal", "shopper", None, None, None, None),
    ("i1", "impulsive", "chaser", "high", "loss_of_control", "high", "loss_of_control"),
    ("i2", "impulsive", "chaser", "high", "loss_of_control", "low", "none"),
    ("i3", "impulsive", "chaser", "elevated", "automation", "elevated", "automation"),
    ("b1", "bot", "scraper", "high", "automation", "high", "automation"),
    ("b2", "bot", "scraper", "low", "loss_of_control", "low", "loss_of_control"),
]


def frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    labels = pd.DataFrame([u[:3] for u in USERS], columns=["user_id", "persona", "behaviour"])
    stored = [u for u in USERS if u[3] is not None]
    columns = ["user_id", "band", "risk_kind", "score", "markers"]
    at_peak = pd.DataFrame([(u[0], u[3], u[4], 0, []) for u in stored], columns=columns)
    current = pd.DataFrame([(u[0], u[5], u[6], 0, []) for u in stored], columns=columns)
    return labels, at_peak, current


COUNTS = ["users", "correct", "wrong_band", "wrong_kind", "correct_now"]


def test_behaviour_rows_count_correct_wrong_band_wrong_kind_at_the_peak_and_now() -> None:
    table = script.judge_behaviours(*frames()).set_index("behaviour")
    assert table.loc["shopper", COUNTS].tolist() == [3, 2, 1, 0, 2]  # n3, with nothing stored, is low
    assert table.loc["chaser", COUNTS].tolist() == [3, 2, 0, 1, 1]  # i2 decayed: right at peak, wrong now
    assert table.loc["scraper", COUNTS].tolist() == [2, 1, 1, 0, 1]
    assert table.loc["shopper", "outcomes"] == {"low/none": 2, "high/loss_of_control": 1}


def test_the_per_behaviour_table_agrees_with_evaluate_per_sub_type(tmp_path: Path) -> None:
    labels, at_peak, current = frames()
    path = tmp_path / "labels.csv"
    labels.rename(columns={"behaviour": "sub_type"}).to_csv(path, index=False)
    theirs = evaluate(load_labels(path), at_peak).by_sub_type.set_index("sub_type")
    ours = script.judge_behaviours(labels, at_peak, current).set_index("behaviour")
    for column in ("users", "correct", "wrong_band", "wrong_kind"):
        assert ours[column].sort_index().tolist() == theirs.loc[ours.index, column].sort_index().tolist()
