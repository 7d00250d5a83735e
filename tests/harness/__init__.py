"""Tests of the fault harness's probes: which worker process is inside a write transaction."""
