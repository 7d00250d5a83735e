"""Detection-quality arithmetic on hand-made labels and predictions."""

from __future__ import annotations

import pandas as pd
import pytest

from workers.evaluation import evaluate


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
