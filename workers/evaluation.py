"""Detection quality: stored risk against the producer's ground-truth labels (persona and sub-type)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select

from config.settings import Settings
from store.models import RiskBucket, UserRisk
from workers.risk import RiskRules, assess, fold_buckets
from workers.sequence import BUCKET_FIELDS

AT_RISK_PERSONAS = frozenset({"impulsive", "bot"})
EXPECTED_KIND = {"bot": "automation", "impulsive": "loss_of_control"}
PERSONA_ORDER = ("normal", "impulsive", "bot")
UNKNOWN_SUB_TYPE = "unknown"  # labels written before sub-types existed
NO_MARKER = "(none)"  # a misjudged user on whom no marker fired
ERRORS = ("false_alarm", "missed", "wrong_kind")
SCORE_QUANTILES = {"min": 0.0, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p90": 0.9, "p99": 0.99, "max": 1.0}
SCORE_BUCKET_EDGES = (0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 101)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The confusion matrix, headline scores, and the per-sub-type and per-marker breakdowns."""

    confusion: pd.DataFrame  # persona x predicted (band/kind), user counts
    users: int
    precision: float
    recall: float
    f1: float
    false_positive_rate: float
    kind_accuracy: float
    # persona, sub_type, users, correct, wrong_band, wrong_kind, correct_share, median_score, error_markers
    by_sub_type: pd.DataFrame
    error_markers: pd.DataFrame  # marker x (false_alarm, missed, wrong_kind, total): misjudged users
    score_quantiles: pd.DataFrame  # persona x (users, mean, min, p25, ..., max)
    score_buckets: pd.DataFrame  # persona x score bucket ("0-9" ... "90-100"), user counts

    def headline(self) -> dict[str, Any]:
        """The headline scores."""
        return {
            "users": self.users,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "false_positive_rate": self.false_positive_rate,
            "kind_accuracy": self.kind_accuracy,
        }

    def to_dict(self) -> dict[str, Any]:
        """Every figure, as plain JSON-ready values."""
        return {
            **self.headline(),
            "confusion": {
                str(p): {str(k): int(v) for k, v in row.items()} for p, row in self.confusion.iterrows()
            },
            "by_sub_type": _records(self.by_sub_type),
            "error_markers": _records(self.error_markers.reset_index()),
            "score_quantiles": _records(self.score_quantiles.reset_index()),
            "score_buckets": {
                str(p): {str(k): int(v) for k, v in row.items()} for p, row in self.score_buckets.iterrows()
            },
        }


def load_labels(path: Path) -> pd.DataFrame:
    """The labels CSV (user_id, persona, sub_type), one row per user; a missing sub-type is unknown."""
    labels = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "sub_type" not in labels:
        labels["sub_type"] = UNKNOWN_SUB_TYPE
    labels["sub_type"] = labels["sub_type"].replace("", UNKNOWN_SUB_TYPE)
    return labels.drop_duplicates("user_id", keep="last").reset_index(drop=True)


class JudgedAt(StrEnum):
    """Which of a user's scores the labels are judged against."""

    # The lifetime peak: a label is about the user, and an alert at any time is a detection
    # (or a false alarm); the default.
    PEAK = "peak"
    # The window ending at the user's latest event: where the decaying score stands now.
    CURRENT = "current"


def load_predictions(engine: Engine, settings: Settings, *, at: JudgedAt = JudgedAt.PEAK) -> pd.DataFrame:
    """Band, kind, score and the names of the fired markers of every stored user, at their peak or now."""
    if at is JudgedAt.CURRENT:
        judged = (UserRisk.band, UserRisk.risk_kind, UserRisk.score)
    else:
        judged = (UserRisk.peak_band, UserRisk.peak_kind, UserRisk.peak_score)
    with engine.connect() as conn:
        rows = conn.execute(select(UserRisk.user_id, *judged, UserRisk.markers)).all()
    frame = pd.DataFrame(rows, columns=["user_id", "band", "risk_kind", "score", "markers"])
    frame["markers"] = [[str(m["name"]) for m in markers or []] for markers in frame["markers"]]
    if at is JudgedAt.PEAK:
        rules, bucket_ms = RiskRules.from_settings(settings), round(settings.risk_bucket_s * 1000)
        earlier = peak_markers(engine, rules, bucket_ms)
        pairs = zip(frame["user_id"], frame["markers"], strict=True)
        frame["markers"] = [earlier.get(user_id, markers) for user_id, markers in pairs]
    return frame


def peak_markers(engine: Engine, rules: RiskRules, bucket_ms: int) -> dict[str, list[str]]:
    """The markers of each user whose peak is an earlier window than the current one, rescored.

    Only the current window's markers are stored; an earlier window is refolded from its
    buckets and assessed with the same rules, so its score is the stored peak.
    """
    span = (rules.window_buckets - 1) * bucket_ms
    latest = UserRisk.last_seen_ms - UserRisk.last_seen_ms % bucket_ms
    query = (
        select(RiskBucket.user_id, UserRisk.peak_score, *(getattr(RiskBucket, f) for f in BUCKET_FIELDS))
        .join(UserRisk, UserRisk.user_id == RiskBucket.user_id)
        .where(
            UserRisk.peak_ms != latest,
            RiskBucket.bucket_ms <= UserRisk.peak_ms,
            RiskBucket.bucket_ms >= UserRisk.peak_ms - span,
        )
        .order_by(RiskBucket.user_id, RiskBucket.bucket_ms)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    markers: dict[str, list[str]] = {}
    for user_id, group in itertools.groupby(rows, key=lambda row: row[0]):
        window = [tuple(row[2:]) for row in group]
        markers[user_id] = [m.name for m in assess(fold_buckets(window), rules).markers]
    return markers


def evaluate(labels: pd.DataFrame, predictions: pd.DataFrame) -> Evaluation:
    """Score 'at risk' (elevated or high) against impulsive+bot, and the kind against the persona.

    A labelled user with no stored events counts as predicted low with score 0. Correct is band
    low for a normal user, and elevated or high with the persona's kind for an at-risk one.
    """
    df = judge(labels, predictions)
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
    return Evaluation(
        confusion=confusion,
        users=len(df),
        precision=precision,
        recall=recall,
        f1=f1,
        false_positive_rate=fpr,
        kind_accuracy=kind_accuracy,
        by_sub_type=sub_type_table(df),
        error_markers=error_marker_table(df),
        score_quantiles=score_quantiles(df),
        score_buckets=score_buckets(df),
    )


def judge(labels: pd.DataFrame, predictions: pd.DataFrame) -> pd.DataFrame:
    """One row per labelled user with its prediction and its error (empty when correct)."""
    df = labels.merge(predictions, on="user_id", how="left")
    if "sub_type" not in df:
        df["sub_type"] = UNKNOWN_SUB_TYPE
    df["sub_type"] = df["sub_type"].fillna(UNKNOWN_SUB_TYPE)
    df["band"] = df["band"].fillna("low")
    df["risk_kind"] = df["risk_kind"].fillna("none")
    if "score" not in df:
        df["score"] = 0
    df["score"] = pd.to_numeric(df["score"], errors="coerce").fillna(0).astype(int)
    markers = df["markers"] if "markers" in df else pd.Series([None] * len(df), index=df.index)
    df["markers"] = [m if isinstance(m, list) else [] for m in markers]
    at_risk = df["persona"].isin(AT_RISK_PERSONAS)
    flagged = df["band"] != "low"
    right_kind = df["risk_kind"] == df["persona"].map(EXPECTED_KIND)
    df["error"] = ""
    df.loc[~at_risk & flagged, "error"] = "false_alarm"
    df.loc[at_risk & ~flagged, "error"] = "missed"
    df.loc[at_risk & flagged & ~right_kind, "error"] = "wrong_kind"
    return df


def sub_type_table(judged: pd.DataFrame) -> pd.DataFrame:
    """Per persona and sub-type: users, correct, wrong band, wrong kind, and the markers behind the errors."""
    rows = []
    for (persona, sub_type), group in judged.groupby(["persona", "sub_type"], sort=False):
        errors = group["error"]
        wrong = group[errors != ""]
        names = pd.Series([n for m in wrong["markers"] for n in (m or [NO_MARKER])], dtype=object)
        rows.append(
            {
                "persona": persona,
                "sub_type": sub_type,
                "users": len(group),
                "correct": int((errors == "").sum()),
                "wrong_band": int(errors.isin(["false_alarm", "missed"]).sum()),
                "wrong_kind": int((errors == "wrong_kind").sum()),
                "correct_share": float((errors == "").mean()),
                "median_score": float(group["score"].median()),
                "error_markers": ", ".join(f"{n} {c}" for n, c in names.value_counts().head(3).items()),
            }
        )
    table = pd.DataFrame(rows, columns=[*_SUB_TYPE_COLUMNS])
    order = {p: i for i, p in enumerate(PERSONA_ORDER)}
    table["_order"] = table["persona"].map(order).fillna(len(order))
    return table.sort_values(["_order", "sub_type"]).drop(columns="_order").reset_index(drop=True)


def error_marker_table(judged: pd.DataFrame) -> pd.DataFrame:
    """How many misjudged users each marker fired on, per kind of error, most frequent first."""
    wrong = judged[judged["error"] != ""]
    pairs = [
        (name, error)
        for markers, error in zip(wrong["markers"], wrong["error"], strict=True)
        for name in (markers or [NO_MARKER])
    ]
    frame = pd.DataFrame(pairs, columns=["marker", "error"])
    table = (
        pd.crosstab(frame["marker"], frame["error"])
        if len(frame)
        else pd.DataFrame(index=pd.Index([], name="marker"))
    )
    table = table.reindex(columns=list(ERRORS), fill_value=0)
    table["total"] = table.sum(axis=1)
    return table.sort_values(["total", *ERRORS], ascending=False).astype(int)


def score_quantiles(judged: pd.DataFrame) -> pd.DataFrame:
    """Per persona: users, mean score and score quantiles."""
    grouped = judged.groupby("persona")["score"]
    table = pd.DataFrame({"users": grouped.size(), "mean": grouped.mean()})
    for name, q in SCORE_QUANTILES.items():
        table[name] = grouped.quantile(q)
    return table.reindex(_persona_index(table.index))


def score_buckets(judged: pd.DataFrame) -> pd.DataFrame:
    """Per persona: users per score bucket of ten points (the last one holds 90-100)."""
    edges = SCORE_BUCKET_EDGES
    names = [f"{lo}-{hi - 1}" for lo, hi in itertools.pairwise(edges)]
    names[-1] = f"{edges[-2]}-100"
    bucket = pd.cut(judged["score"], bins=list(edges), right=False, labels=names)
    table = pd.crosstab(judged["persona"], bucket).reindex(columns=names, fill_value=0)
    return table.reindex(_persona_index(table.index), fill_value=0)


_SUB_TYPE_COLUMNS = (
    "persona",
    "sub_type",
    "users",
    "correct",
    "wrong_band",
    "wrong_kind",
    "correct_share",
    "median_score",
    "error_markers",
)


def _persona_index(present: pd.Index) -> list[str]:
    """The personas present, in the usual order, others after."""
    known = [p for p in PERSONA_ORDER if p in present]
    return known + sorted(p for p in present if p not in PERSONA_ORDER)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a frame as dicts of plain Python values."""
    return [
        {str(k): (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


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

    def to_dict(self) -> dict[str, object]:
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
