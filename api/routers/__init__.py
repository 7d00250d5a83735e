"""One router per resource: users, alerts, health."""
