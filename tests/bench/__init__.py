"""Tests of the benchmark: pure pieces of the suite, the synthetic store against the rules, the smoke run."""
