"""Tests of storage: engines and locks, migrations, summaries."""
