"""Tests of the producer: personas, faults, generator, importer, publisher, reconcile."""
