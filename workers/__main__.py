"""`python -m workers worker|flower|inspect …`: Celery's command line, with this process's settings."""

from __future__ import annotations

import sys

from celery import Celery
from celery.bin.celery import celery as celery_command
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
    return run_command(app, argv)


def run_command(app: Celery, argv: list[str]) -> int:
    """Celery's command line on app, returning the command's exit code.

    Not `app.start`: it runs click in non-standalone mode and drops the code click returns, so a
    worker that ends on an unrecoverable error, or that the stall watchdog stops, would exit 0
    and a process manager that restarts only failures would leave it down.
    """
    celery_command.params[0].default = app
    try:
        code = celery_command.main(args=argv, standalone_mode=False)
    finally:
        celery_command.params[0].default = None
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
