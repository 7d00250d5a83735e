"""Detection-quality arithmetic on hand-made labels and predictions."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from workers.evaluation import NO_MARKER, UNKNOWN_SUB_TYPE, evaluate, load_labels


def test_scores_at_risk_and_kind() -> None:
    labels = pd.DataFrame(
        {
            "user_id": ["n1", "n2", "n3", "i1", "i2", "b1", "b2"],
            "persona": ["normal", "normal", "normal", "impulsive", "impulsive", "bot", "bot"],
        }
    )
    predictions = pd.DataFrame(
        {
            "user_id": ["n1", "n2", "i1", "i2", "b1", "b2"],
            "band": ["low", "elevated", "high", "low", "high", "elevated"],
            "risk_kind": [
                "none",
                "loss_of_control",
                "loss_of_control",
                "none",
                "automation",
                "loss_of_control",
            ],
        }
    )
    result = evaluate(labels, predictions)
    # at risk: i1, b1, b2 predicted (tp 3), i2 missed (fn 1), n2 false alarm (fp 1); n3 unseen -> low
    assert result.precision == pytest.approx(3 / 4)
    assert result.recall == pytest.approx(3 / 4)
    assert result.f1 == pytest.approx(3 / 4)
    assert result.false_positive_rate == pytest.approx(1 / 3)
    assert result.kind_accuracy == pytest.approx(2 / 4)
    assert result.confusion.loc["normal", "low/none"] == 2
    assert result.users == 7


def test_empty_predictions_give_zero_scores_not_errors() -> None:
    labels = pd.DataFrame({"user_id": ["a"], "persona": ["bot"]})
    result = evaluate(labels, pd.DataFrame(columns=["user_id", "band", "risk_kind"]))
    assert (result.precision, result.recall, result.f1, result.kind_accuracy) == (0.0, 0.0, 0.0, 0.0)


def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Eight labelled users of four sub-types, with hand-made predictions covering every outcome."""
    rows = [
        # user, persona, sub-type, band, kind, score, markers
        ("n1", "normal", "browser", "low", "none", 0, []),
        ("n2", "normal", "browser", "low", "loss_of_control", 15, ["unsociable_hours"]),
        ("n3", "normal", "quick_pager", "high", "loss_of_control", 75, ["rapid_share", "burst"]),
        ("n4", "normal", "quick_pager", "elevated", "loss_of_control", 65, ["rapid_share"]),
        ("c1", "impulsive", "stake_chaser", "high", "loss_of_control", 90, ["purchase_velocity"]),
        ("c2", "impulsive", "stake_chaser", "low", "none", 35, ["purchase_velocity"]),
        ("m1", "bot", "machine_burst", "high", "automation", 80, ["steady_rhythm"]),
        ("m2", "bot", "machine_burst", "high", "loss_of_control", 75, ["rapid_share", "burst"]),
    ]
    frame = pd.DataFrame(
        rows, columns=["user_id", "persona", "sub_type", "band", "risk_kind", "score", "markers"]
    )
    return frame[["user_id", "persona", "sub_type"]], frame.drop(columns=["persona", "sub_type"])


def test_each_sub_type_counts_correct_wrong_band_and_wrong_kind() -> None:
    labels, predictions = frames()
    table = evaluate(labels, predictions).by_sub_type.set_index("sub_type")
    # Derived from the frames: quick pagers are both flagged (wrong band); one chaser missed
    # (wrong band); one burst bot called loss of control (wrong kind).
    expected = {
        "browser": (2, 2, 0, 0),
        "quick_pager": (2, 0, 2, 0),
        "stake_chaser": (2, 1, 1, 0),
        "machine_burst": (2, 1, 0, 1),
    }
    for sub_type, (users, correct, wrong_band, wrong_kind) in expected.items():
        row = table.loc[sub_type]
        assert (row["users"], row["correct"], row["wrong_band"], row["wrong_kind"]) == (
            users,
            correct,
            wrong_band,
            wrong_kind,
        )
        assert row["correct_share"] == pytest.approx(correct / users)
    assert list(table["persona"]) == ["normal", "normal", "impulsive", "bot"]  # persona order, then name
    assert table.loc["quick_pager", "median_score"] == 70
    assert table.loc["quick_pager", "error_markers"] == "rapid_share 2, burst 1"


def test_error_markers_count_the_misjudged_users_per_kind_of_error() -> None:
    labels, predictions = frames()
    markers = evaluate(labels, predictions).error_markers
    # False alarms: n3 (rapid_share, burst), n4 (rapid_share); missed: c2 (purchase_velocity);
    # wrong kind: m2 (rapid_share, burst). n2's late-night marker sits under no error.
    assert markers.loc["rapid_share"].to_dict() == {
        "false_alarm": 2,
        "missed": 0,
        "wrong_kind": 1,
        "total": 3,
    }
    assert markers.loc["burst"].to_dict() == {"false_alarm": 1, "missed": 0, "wrong_kind": 1, "total": 2}
    assert markers.loc["purchase_velocity", "missed"] == 1
    assert "unsociable_hours" not in markers.index and "steady_rhythm" not in markers.index
    assert markers.index[0] == "rapid_share"


def test_a_misjudged_user_without_markers_is_counted_as_none() -> None:
    labels = pd.DataFrame({"user_id": ["b1"], "persona": ["bot"], "sub_type": ["tireless_mimic"]})
    result = evaluate(labels, pd.DataFrame(columns=["user_id", "band", "risk_kind", "score", "markers"]))
    assert result.error_markers.loc[NO_MARKER, "missed"] == 1
    assert result.by_sub_type.loc[0, "error_markers"] == f"{NO_MARKER} 1"


def test_score_distribution_by_persona() -> None:
    labels, predictions = frames()
    result = evaluate(labels, predictions)
    scores = predictions.set_index("user_id")["score"]
    normal = scores[["n1", "n2", "n3", "n4"]]
    quantiles = result.score_quantiles
    assert list(quantiles.index) == ["normal", "impulsive", "bot"]
    assert quantiles.loc["normal", "users"] == 4
    assert quantiles.loc["normal", "mean"] == pytest.approx(normal.mean())
    assert quantiles.loc["normal", "p50"] == pytest.approx(normal.median())
    assert quantiles.loc["bot", "max"] == scores[["m1", "m2"]].max()
    buckets = result.score_buckets
    assert buckets.loc["normal"].sum() == 4 and buckets.loc["normal", "0-9"] == 1
    assert buckets.loc["normal", "10-19"] == 1 and buckets.loc["normal", "60-69"] == 1
    assert buckets.loc["impulsive", "90-100"] == 1 and buckets.loc["bot", "70-79"] == 1


def test_old_two_column_labels_read_with_an_unknown_sub_type(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("user_id,persona\nu1,normal\nu2,bot\nu2,bot\n", encoding="utf-8")
    labels = load_labels(path)
    assert list(labels["sub_type"]) == [UNKNOWN_SUB_TYPE, UNKNOWN_SUB_TYPE]
    result = evaluate(
        labels, pd.DataFrame({"user_id": ["u2"], "band": ["high"], "risk_kind": ["automation"]})
    )
    assert result.by_sub_type.set_index("persona").loc["bot", "sub_type"] == UNKNOWN_SUB_TYPE
    assert result.kind_accuracy == 1.0


def test_every_figure_goes_to_json() -> None:
    labels, predictions = frames()
    figures = json.loads(json.dumps(evaluate(labels, predictions).to_dict()))
    assert figures["users"] == 8
    assert {row["sub_type"] for row in figures["by_sub_type"]} == set(labels["sub_type"])
    assert figures["confusion"]["normal"]["high/loss_of_control"] == 1
    assert figures["score_buckets"]["normal"]["0-9"] == 1
    assert {row["marker"] for row in figures["error_markers"]} == {
        "rapid_share",
        "burst",
        "purchase_velocity",
    }
