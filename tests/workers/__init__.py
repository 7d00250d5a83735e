"""Tests of the workers: validation, sequence, risk, ingest exactness, replay, tasks."""
