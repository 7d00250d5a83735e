"""The producer: simulated users with faults, file imports, and the one way onto the queue."""
