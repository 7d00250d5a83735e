"""Benchmarks of `ecomrisk bench`: figures printed, never timed tests; kept out of the product packages."""
