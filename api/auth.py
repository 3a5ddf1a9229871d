"""API-key authentication and role checks.

Roles form one ladder, each including the rights of those below it:

    viewer   read incidents, media, stats, workers, metrics
    operator + handle incidents (ack / resolve / false-positive), cameras and zones
    platform + detect API and the event stream (GET /v1/events)
    admin    + API keys and webhooks, everything

`platform` includes viewer rights on purpose: a platform that consumes the event stream must be able to fetch the
snapshot and clip each event links to. A ladder (one integer comparison) is easier to reason about than a matrix.

A key may be scoped to sites (`Principal.sites`; None = every site). Scope is the second, independent axis: the role
says what a key may do, the scope on which sites. The store queries apply the scope (`api.store.incidents`,
`api.store.stats`, `api.sse`), so another site's data is never read, and the routers answer 404 for another site's
incident, camera or webhook, as for one that does not exist. Fleet-wide powers (managing keys, `/metrics`) need a
key for all sites (`RequireRole(..., all_sites=True)`): a site manager must not mint keys or read other sites' cameras.

Keys are 256-bit random strings (`secrets.token_urlsafe(32)`) stored as their SHA-256. bcrypt/argon2 exist to slow
down guessing of *low-entropy* passwords; a 256-bit random key cannot be brute-forced either way, and a fast hash keeps
every request to one indexed equality lookup instead of ~100 ms of deliberate CPU work per request.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.store.keys import find_key, key_sites


class Role(StrEnum):
    viewer = "viewer"
    operator = "operator"
    platform = "platform"
    admin = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def includes(self, other: Role) -> bool:
        return self.rank >= other.rank


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id, name and role, and its sites (None: every site)."""

    key_id: str
    name: str
    role: Role
    sites: frozenset[str] | None = None

    @property
    def scoped(self) -> bool:
        return self.sites is not None

    def sees(self, site: str) -> bool:
        """Whether this key may see (and, with the role, act on) things of `site`."""
        return self.sites is None or site in self.sites

    def covers(self, sites: Iterable[str]) -> bool:
        """Whether every site in `sites` is one of this key's (an empty `sites` means every site, so only an unscoped
        key covers it)."""
        wanted = frozenset(sites)
        return self.sites is None or (bool(wanted) and wanted <= self.sites)


api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key (`safewatch keys create`)")
bearer = HTTPBearer(auto_error=False, description="The API key as a bearer token")


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=reason, headers={"WWW-Authenticate": "Bearer"})


class RequireRole:
    """Dependency: the caller's key must hold `role` (or a higher one). Missing/unknown key → 401, too low → 403.

    `all_sites`: the key must not be site-scoped either (403 naming its sites).
    """

    def __init__(self, role: Role, *, all_sites: bool = False) -> None:
        self.role = role
        self.all_sites = all_sites

    def __call__(
        self,
        request: Request,
        x_api_key: Annotated[str | None, Security(api_key_header)],
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    ) -> Principal:
        key = x_api_key or (credentials.credentials if credentials else None)
        if not key:
            raise _unauthorized("API key required: send X-API-Key or Authorization: Bearer <key>")
        store = request.app.state.ctx.store
        with store.read() as session:
            row = find_key(session, key)
            principal = None if row is None else Principal(row.id, row.name, Role(row.role), key_sites(row))
        if principal is None:
            raise _unauthorized("unknown API key")
        if not principal.role.includes(self.role):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"this endpoint requires the {self.role.value} role (or higher); "
                f"key {principal.name!r} has {principal.role.value}",
            )
        if self.all_sites and principal.sites is not None:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"this endpoint requires a key for all sites; key {principal.name!r} is scoped to "
                f"{', '.join(sorted(principal.sites))}",
            )
        return principal

    def __repr__(self) -> str:
        return f"RequireRole({self.role.value}{', all_sites=True' if self.all_sites else ''})"


_REQUIRE = {role: RequireRole(role) for role in Role}
_REQUIRE_ALL_SITES = {role: RequireRole(role, all_sites=True) for role in (Role.viewer, Role.admin)}

ViewerKey = Annotated[Principal, Depends(_REQUIRE[Role.viewer])]
OperatorKey = Annotated[Principal, Depends(_REQUIRE[Role.operator])]
PlatformKey = Annotated[Principal, Depends(_REQUIRE[Role.platform])]
AdminKey = Annotated[Principal, Depends(_REQUIRE[Role.admin])]
AllSitesViewerKey = Annotated[Principal, Depends(_REQUIRE_ALL_SITES[Role.viewer])]
AllSitesAdminKey = Annotated[Principal, Depends(_REQUIRE_ALL_SITES[Role.admin])]


def require(role: Role) -> RequireRole:
    """The shared dependency for `role` (for `dependencies=[Depends(require(Role.x))]` on routers)."""
    return _REQUIRE[role]
