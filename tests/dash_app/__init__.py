"""Tests of the dashboard: queries, figures, callbacks, and a real browser."""
