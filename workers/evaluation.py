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


# --- precision from analyst reviews -------------------------------------------------------------

TRUE_POSITIVE_LABELS = frozenset({"confirmed_automation", "confirmed_harm"})
FALSE_POSITIVE_LABEL = "false_positive"
REVIEW_COLUMNS = ["alert_id", "band", "kind", "label", "markers"]


@dataclass(frozen=True, slots=True)
class ReviewPrecision:
    """Precision of alerts against analyst labels, per band, per kind and per marker."""

    labelled: int  # resolved alerts with a label
    true_positives: int
    false_positives: int
    by_band: pd.DataFrame  # index value; columns true_positives, false_positives, precision
    by_kind: pd.DataFrame
    by_marker: pd.DataFrame

    @property
    def precision(self) -> float | None:
        """Over every labelled alert; None before any label."""
        total = self.true_positives + self.false_positives
        return self.true_positives / total if total else None

    def to_json(self) -> dict[str, object]:
        """The figures as plain JSON."""

        def table(frame: pd.DataFrame) -> dict[str, dict[str, object]]:
            return {
                str(name): {
                    "true_positives": int(row["true_positives"]),
                    "false_positives": int(row["false_positives"]),
                    "precision": float(row["precision"]),
                }
                for name, row in frame.iterrows()
            }

        return {
            "labelled": self.labelled,
            "true_positives": self.true_positives,
            "false_positives": self.false_positives,
            "precision": self.precision,
            "by_band": table(self.by_band),
            "by_kind": table(self.by_kind),
            "by_marker": table(self.by_marker),
        }


def _precision_by(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    grouped = frame.groupby(column)["true_positive"]
    counts = pd.DataFrame(
        {"true_positives": grouped.sum().astype("int64"), "labelled": grouped.count().astype("int64")}
    )
    counts["false_positives"] = counts["labelled"] - counts["true_positives"]
    counts["precision"] = counts["true_positives"] / counts["labelled"]
    counts.index.name = "value"
    return counts[["true_positives", "false_positives", "precision"]].sort_values(
        ["precision", "false_positives"], ascending=[True, False], kind="stable"
    )


def review_precision(reviews: pd.DataFrame) -> ReviewPrecision:
    """Precision from labelled alerts (REVIEW_COLUMNS, markers a list of names); other labels are left out.

    confirmed_automation and confirmed_harm count as true positives, false_positive as a false
    positive. Per marker, an alert counts once for every marker among its reasons, so a marker
    with low precision is one whose weight to lower.
    """
    labelled = reviews[reviews["label"].isin(TRUE_POSITIVE_LABELS | {FALSE_POSITIVE_LABEL})].copy()
    labelled["true_positive"] = labelled["label"].isin(TRUE_POSITIVE_LABELS)
    per_marker = labelled.explode("markers").dropna(subset=["markers"])
    tp = int(labelled["true_positive"].sum())
    return ReviewPrecision(
        labelled=len(labelled),
        true_positives=tp,
        false_positives=len(labelled) - tp,
        by_band=_precision_by(labelled, "band"),
        by_kind=_precision_by(labelled, "kind"),
        by_marker=_precision_by(per_marker, "markers"),
    )


def load_review_labels(engine: Engine) -> pd.DataFrame:
    """Each resolved alert's current label (its latest review) with its band, kind and marker names."""
    from store.models import Alert, AlertState

    with engine.connect() as conn:
        rows = conn.execute(
            select(Alert.id, Alert.band, Alert.risk_kind, AlertState.label, Alert.reasons)
            .join(AlertState, AlertState.alert_id == Alert.id)
            .where(AlertState.status == "resolved", AlertState.label.is_not(None))
        ).all()
    return pd.DataFrame(
        [
            (alert_id, band, kind, label, [m.get("name") for m in reasons or [] if isinstance(m, dict)])
            for alert_id, band, kind, label, reasons in rows
        ],
        columns=REVIEW_COLUMNS,
    )
