"""Pure conversions from stored rows to response models; stored JSON is read defensively."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from api import schemas
from contract.webhook import user_path

TOP_MARKERS = 3


def markers_of(stored: Any) -> list[schemas.Marker]:
    """Markers from user_risk.markers or alerts.reasons JSON; keys a release lacks read as None."""
    markers = []
    for m in stored or []:
        if not isinstance(m, Mapping):
            continue
        markers.append(
            schemas.Marker(
                name=str(m.get("name", "")),
                value=float(m.get("value") or 0),
                threshold=float(m.get("threshold") or 0),
                weight=int(m.get("weight") or 0),
                kind=str(m.get("kind", "")),
                description=m.get("description"),
                evidence=None if m.get("evidence") is None else int(m["evidence"]),
                bound=None if m.get("bound") is None else float(m["bound"]),
            )
        )
    return markers


def top_marker_names(stored: Any) -> list[str]:
    """The names of the strongest markers."""
    markers = sorted(markers_of(stored), key=lambda m: -m.weight)
    return [m.name for m in markers[:TOP_MARKERS]]


def peak_of(row: Mapping[Any, Any]) -> schemas.Peak:
    """The lifetime peak of a user_risk row."""
    return schemas.Peak(
        score=int(row["peak_score"]), band=row["peak_band"], kind=row["peak_kind"], at_ms=int(row["peak_ms"])
    )


def user_risk(row: Mapping[Any, Any], allow_listed_until_ms: int | None) -> schemas.UserRisk:
    """A user_risk row as the API shows it."""
    return schemas.UserRisk(
        user_id=row["user_id"],
        score=row["score"],
        band=row["band"],
        kind=row["risk_kind"],
        automation_score=row["automation_score"],
        loss_of_control_score=row["loss_of_control_score"],
        window_events=row["window_events"],
        peak=peak_of(row),
        markers=markers_of(row["markers"]),
        first_seen_ms=row["first_seen_ms"],
        last_seen_ms=row["last_seen_ms"],
        events=row["events"],
        rapid_events=row["rapid_events"],
        purchases=row["purchases"],
        sessions=row["sessions"],
        updated_ms=row["updated_ms"],
        allow_listed_until_ms=allow_listed_until_ms,
    )


def user_summary(row: Mapping[Any, Any]) -> schemas.UserSummary:
    """One row of the user list."""
    return schemas.UserSummary(
        user_id=row["user_id"],
        score=row["score"],
        band=row["band"],
        kind=row["risk_kind"],
        top_markers=top_marker_names(row["markers"]),
        events=row["events"],
        last_seen_ms=row["last_seen_ms"],
        peak=peak_of(row),
    )


def alert_out(row: Mapping[Any, Any]) -> schemas.AlertOut:
    """An alert row joined with its state."""
    return schemas.AlertOut(
        alert_id=row["id"],
        user_id=row["user_id"],
        created_ms=row["created_ms"],
        score=row["score"],
        band=row["band"],
        kind=row["risk_kind"],
        markers=markers_of(row["reasons"]),
        status=schemas.AlertStatus(row["status"] or "open"),
        label=row["label"],
        reviewed_ms=row["reviewed_ms"],
        link=user_path(row["user_id"]),
    )


def review_out(row: Mapping[Any, Any]) -> schemas.ReviewOut:
    """One review row."""
    return schemas.ReviewOut(**{name: row[name] for name in schemas.ReviewOut.model_fields})
