"""The Celery workers: a thin task over pure validation, sequence and risk, and the ingest steps."""
