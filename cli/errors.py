"""How a command ends when it cannot run as configured: exit code 2 and a message, never a traceback."""

from __future__ import annotations

import typer
from pydantic import ValidationError

from config.settings import Settings, get_settings

USAGE_EXIT = 2  # the exit code of a command that cannot run as configured
NO_BROKER = (
    "ECOMRISK_REDIS_URL is not set: run `ecomrisk up`, or export ECOMRISK_REDIS_URL=redis://127.0.0.1:6379/0"
)


def fail(message: str) -> typer.Exit:
    """Print message to stderr and return the exit that ends the command."""
    typer.echo(message, err=True)
    return typer.Exit(USAGE_EXIT)


def describe_errors(exc: ValidationError) -> str:
    """One line per invalid setting, named by its environment variable."""
    lines = []
    for error in exc.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        loc = error["loc"]
        # A field with aliases is reported under its alias, which already carries the prefix.
        name = str(loc[0]).upper().removeprefix("ECOMRISK_") if loc else ""
        lines.append(f"  ECOMRISK_{name}: {message}" if loc else f"  {message}")
    return "\n".join(["Invalid configuration:", *lines])


def load_settings() -> Settings:
    """The process settings; an invalid configuration ends the command with a clear message."""
    try:
        return get_settings()
    except ValidationError as exc:
        raise fail(describe_errors(exc)) from None


def require_broker(settings: Settings) -> str:
    """The broker URL; without one the command ends with a hint instead of a traceback."""
    if not settings.redis_url:
        raise fail(NO_BROKER)
    return settings.redis_url
