"""Fault harness: worker fleets and kill probes, the no-loss invariant, and the `ecomrisk chaos` run."""
