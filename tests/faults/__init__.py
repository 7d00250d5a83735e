"""Fault injection on real processes: kill -9, Redis restarts, a full disk, tight readers."""
