"""Tests of the score and review API, the webhooks and review feedback, against real processes."""
