"""Detection quality: stored risk against the producer's ground-truth persona labels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, select

from store.models import UserRisk

AT_RISK_PERSONAS = frozenset({"impulsive", "bot"})
EXPECTED_KIND = {"bot": "automation", "impulsive": "loss_of_control"}


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Confusion matrix and headline scores of one evaluation."""

    confusion: pd.DataFrame  # persona x predicted (band/kind), user counts
    users: int
    precision: float
    recall: float
    f1: float
    false_positive_rate: float
    kind_accuracy: float


def load_labels(path: Path) -> pd.DataFrame:
    """The labels CSV (user_id, persona), one row per user."""
    labels = pd.read_csv(path, dtype=str)
    return labels.drop_duplicates("user_id", keep="last")


def load_predictions(engine: Engine) -> pd.DataFrame:
    """Band and kind of every stored user."""
    with engine.connect() as conn:
        rows = conn.execute(select(UserRisk.user_id, UserRisk.band, UserRisk.risk_kind)).all()
    return pd.DataFrame(rows, columns=["user_id", "band", "risk_kind"])


def evaluate(labels: pd.DataFrame, predictions: pd.DataFrame) -> Evaluation:
    """Score 'at risk' (elevated or high) against impulsive+bot, and the kind against the persona.

    A labelled user with no stored events counts as predicted low.
    """
    df = labels.merge(predictions, on="user_id", how="left")
    df["band"] = df["band"].fillna("low")
    df["risk_kind"] = df["risk_kind"].fillna("none")
    actual = df["persona"].isin(AT_RISK_PERSONAS)
    predicted = df["band"] != "low"
    tp = int((actual & predicted).sum())
    fp = int((~actual & predicted).sum())
    fn = int((actual & ~predicted).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    normal = df["persona"] == "normal"
    fpr = float((normal & predicted).sum() / normal.sum()) if normal.any() else 0.0
    risky = df[actual]
    kind_ok = risky["risk_kind"] == risky["persona"].map(EXPECTED_KIND)
    kind_accuracy = float(kind_ok.mean()) if len(risky) else 0.0
    outcome = df["band"] + "/" + df["risk_kind"]
    confusion = pd.crosstab(df["persona"], outcome)
    return Evaluation(confusion, len(df), precision, recall, f1, fpr, kind_accuracy)
