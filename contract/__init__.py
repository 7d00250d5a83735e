"""The contract between producer and workers: event schemas, reason codes, the task and its message format."""
