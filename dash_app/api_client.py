"""The dashboard's only way to write: review calls to the API with a review-scope token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What the API answered, as a sentence for the page."""

    ok: bool
    message: str


class ReviewClient:
    """POSTs reviews and allow-list entries to the API; never raises for an HTTP failure."""

    def __init__(self, base_url: str, token: str | None, *, timeout_s: float = TIMEOUT_S) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s)

    def review(
        self, alert_id: int, *, status: str, label: str | None = None, note: str | None = None
    ) -> ActionResult:
        """Acknowledge or resolve an alert."""
        body: dict[str, Any] = {"status": status, "label": label, "note": note or None}
        done = self._post(f"/api/v1/alerts/{alert_id}/review", body)
        if done.ok:
            return ActionResult(True, f"Alert {alert_id} {status}" + (f" as {label}" if label else "") + ".")
        return done

    def allow_list(self, user_id: str, *, days: float, note: str | None = None) -> ActionResult:
        """Allow-list a user for `days` days."""
        done = self._post(
            f"/api/v1/users/{quote(user_id, safe='')}/allow-list", {"days": days, "note": note or None}
        )
        return ActionResult(True, f"User {user_id} allow-listed for {days:g} days.") if done.ok else done

    def _post(self, path: str, body: dict[str, Any]) -> ActionResult:
        try:
            response = self._client.post(path, json=body)
        except httpx.HTTPError as exc:
            return ActionResult(False, f"The API at {self.base_url} did not answer ({type(exc).__name__}).")
        if response.is_success:
            return ActionResult(True, "")
        try:
            message = str(response.json()["error"]["message"])
        except (ValueError, KeyError, TypeError):
            message = response.text[:200]
        return ActionResult(False, f"The API refused it (HTTP {response.status_code}): {message}")
