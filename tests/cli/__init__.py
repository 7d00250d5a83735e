"""Tests of the ecomrisk commands, the supervisor and the private Redis."""
