"""Tests of the wire contract: message format, broker options, reason codes."""
