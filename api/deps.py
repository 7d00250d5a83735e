"""What the routers depend on: the app's engines and settings, the caller's identity and scope."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine

from config.settings import ApiToken, Settings
from dash_app.probes import PipelineProbe

# Without configured tokens (allowed on a local address only) every caller reviews under this name.
LOCAL_REVIEWER = "local"

bearer = HTTPBearer(auto_error=False, description="A token of ECOMRISK_API_TOKENS.")


@dataclass
class ApiState:
    """Built once per process: the read-only engine, the review writer, the probes."""

    settings: Settings
    reader: Engine
    writer: Engine
    probe: PipelineProbe
    tokens: tuple[ApiToken, ...] = field(default=())


def api_state(request: Request) -> ApiState:
    """The process's ApiState."""
    state: ApiState = request.app.state.api
    return state


State = Annotated[ApiState, Depends(api_state)]


def identify(tokens: tuple[ApiToken, ...], presented: str) -> ApiToken | None:
    """The token matching presented, compared in constant time against every configured token."""
    found: ApiToken | None = None
    given = presented.encode()
    for token in tokens:
        # No early exit: the time taken does not tell which token, or how much of one, matched.
        if hmac.compare_digest(given, token.token.encode()):
            found = token
    return found


def caller(scope: str) -> object:
    """A dependency that returns the caller's name, or answers 401/403 without a token of that scope."""

    def check(
        state: State, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> str:
        if not state.tokens:
            return LOCAL_REVIEWER
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise HTTPException(
                401, "Authorization: Bearer <token> is required", {"WWW-Authenticate": "Bearer"}
            )
        token = identify(state.tokens, credentials.credentials)
        if token is None:
            raise HTTPException(401, "the bearer token is not valid", {"WWW-Authenticate": "Bearer"})
        if not token.allows(scope):
            raise HTTPException(403, f"the token {token.name!r} has scope {token.scope!r}, not {scope!r}")
        return token.name

    return Depends(check)


Reader = Annotated[str, caller("read")]
Reviewer = Annotated[str, caller("review")]
