"""`python -m workers worker|flower|inspect …`: Celery's command line, with this process's settings."""

from __future__ import annotations

import sys

from pydantic import ValidationError

from config.settings import get_settings
from workers.celery_app import configure


def main(argv: list[str]) -> int:
    """Configure the app from the environment, then run the Celery sub-command in argv."""
    try:
        settings = get_settings()
    except ValidationError as exc:
        print(f"Invalid configuration: {exc}", file=sys.stderr)
        return 2
    try:
        app = configure(settings)
    except RuntimeError as exc:  # no broker URL
        print(str(exc), file=sys.stderr)
        return 2
    return app.start(argv) or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
