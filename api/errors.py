"""Every error as JSON {"error": {status, message, details}}: never a traceback, never an HTML page."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException

log = logging.getLogger(__name__)


def error_response(
    status: int, message: str, *, details: list[dict[str, Any]] | None = None, headers: Any = None
) -> JSONResponse:
    """The one error shape of the API."""
    body: dict[str, Any] = {"status": status, "message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Not the input itself: it can be long, and echoing it back helps nobody.
    return [
        {
            "loc": [str(part) for part in error.get("loc", ())],
            "msg": str(error.get("msg", "")),
            "type": error.get("type"),
        }
        for error in exc.errors()
    ]


def install_error_handlers(app: FastAPI) -> None:
    """JSON for HTTP errors, bad parameters (422), an unreachable store (503) and anything else (500)."""

    @app.exception_handler(HTTPException)
    async def _http(_request: Request, exc: HTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = _validation_details(exc)
        where = ", ".join(".".join(d["loc"]) + f": {d['msg']}" for d in details)
        return error_response(422, f"invalid request: {where}", details=details)

    @app.exception_handler(SQLAlchemyError)
    async def _store(_request: Request, exc: SQLAlchemyError) -> JSONResponse:
        log.warning("store error: %s", exc)
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:200]
        return error_response(503, f"the store cannot be read right now: {first}")

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return error_response(500, f"internal error ({type(exc).__name__}); see the API's log")
