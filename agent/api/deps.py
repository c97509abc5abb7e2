"""Dependency aliases so route signatures read like prose."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from agent.bootstrap import Services
from agent.store.db import session_scope


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


# Declared so the OpenAPI document says how to authenticate; the check itself is below.
_BEARER = HTTPBearer(auto_error=False, description="HUIKUAN_API_KEY")


def require_api_key(request: Request, services: ServicesDep,
                    _: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)] = None
                    ) -> None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401, "missing API key: send Authorization: Bearer <HUIKUAN_API_KEY>",
                            headers={"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(token.strip().encode(), services.api_key.encode()):
        raise HTTPException(401, "invalid API key", headers={"WWW-Authenticate": "Bearer"})


def get_session(services: ServicesDep) -> Iterator[Session]:
    """One transaction per request: committed on success, rolled back on any error."""
    with session_scope(services.engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
ApiKey = Depends(require_api_key)
