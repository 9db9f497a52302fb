"""API keys and roles: ``Authorization: Bearer <token>``, looked up by its SHA-256 digest.

Roles: ``gateway`` (ingest for its own sites only), ``officer`` (alerts), ``supervisor`` (hazards), ``admin``
(everything, including the registry). A missing or unknown token is 401; a known key without the role is 403,
and the refused attempt is logged with the key's name.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request

from sentinel.api.context import context
from sentinel.registry.repository import ApiKey
from sentinel.registry.roles import ROLES, may

log = logging.getLogger("sentinel.api.auth")
__all__ = ["ROLES", "bearer_key", "require"]


def bearer_key(request: Request) -> ApiKey:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(
            401,
            detail={"error": "unauthorized", "reason": "send Authorization: Bearer <token>"},
            headers={"WWW-Authenticate": "Bearer"},
        )
    # Looked up in the database per request: a revoked key stops at once, a new one works at once
    # (sentinel.registry.keys). This runs in a worker thread (see require), never on the event loop.
    key: ApiKey | None = context(request).keys.lookup(token.strip())
    if key is None:
        raise HTTPException(
            401,
            detail={"error": "unauthorized", "reason": "unknown or revoked API key"},
            headers={"WWW-Authenticate": "Bearer"},
        )
    return key


def require(*roles: str) -> Callable[[Request], Coroutine[Any, Any, ApiKey]]:
    """A dependency admitting keys of these roles (admin always passes)."""

    async def dependency(request: Request) -> ApiKey:
        key = await asyncio.to_thread(bearer_key, request)  # one indexed query: off the loop ingest shares
        if not may(key.role, roles):
            log.warning("refused: key %r (role %s) tried %s %s", key.name, key.role, request.method, request.url.path)
            raise HTTPException(
                403,
                detail={
                    "error": "forbidden",
                    "reason": f"role {key.role!r} may not do this; needs {' or '.join(roles)}",
                },
            )
        return key

    return dependency
