"""Security settings a configuration file declares: ``MasterConfig(tls=TLS(...), auth=Auth(...),
authz=Authz(...))`` (Authz and its role matchers and rules: coordinator/domain/auth/authz.py).

The command line's ``--tls-cert/--tls-key/--tls-client-ca`` override ``tls`` when given."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coordinator.domain.location import caller_location
from coordinator.domain.properties.renderables import Secret
from coordinator.domain.workers.sessions import WorkerDecl


@dataclass
class TLS:
    """``TLS(cert="server.pem", key="server.key", client_ca="clients-ca.pem")``: serve gRPC and
    HTTP over TLS; with ``client_ca``, client certificates signed by it are verified (and, with
    ``require_client_cert=True``, demanded). Relative paths are relative to the config file."""

    cert: str
    key: str
    client_ca: str | None = None
    require_client_cert: bool = False
    defined_at: tuple[str, int] = field(default=("<unknown>", 0), compare=False)

    def __post_init__(self) -> None:
        self.defined_at = caller_location(3)

    def resolve(self, base: Path) -> tuple[Path, Path, Path | None]:
        def at(p: str) -> Path:
            return p_ if (p_ := Path(p).expanduser()).is_absolute() else base / p_

        return at(self.cert), at(self.key), at(self.client_ca) if self.client_ca else None


MAX_MESSAGE_LIMIT = 1 << 30  # what a gRPC server may be told to accept at all (1 GiB)


@dataclass
class Auth:
    """Where identities come from (Buildbot's ``auth``); any of them, one pluggable object.

    - ``tokens``: API tokens sent as ``authorization: Bearer gty_...`` (``gantry token create``).
    - ``client_certificates``: a verified TLS client certificate (needs ``TLS(client_ca=...)``);
      its common name is the user, its organizational units the groups.
    - ``proxy_header``: a reverse proxy in front authenticates and names the user in this header
      (e.g. ``"X-Remote-User"``, groups comma-separated in ``proxy_groups_header``); trusted only
      from ``proxy_addresses``. Off unless set.
    - ``users``: local users for the web UI's login form: name -> password hash
      (``python -m coordinator.passwords`` prints one).

    How large a request each caller may send (gRPC message or HTTP body, in bytes); larger is
    refused with RESOURCE_EXHAUSTED / 413 naming the limit. Worker streams keep their own 16 MiB,
    webhooks theirs (25 MB, what GitHub may send):

    - ``max_message_anonymous``: callers without credentials (anonymous read, health checks).
    - ``max_message``: authenticated callers.
    - ``max_message_roles``: role -> limit, for identities holding that role (the largest of its
      roles' limits wins over ``max_message``), e.g. ``{"viewer": 65536, "uploader": 64 << 20}``.
    """

    tokens: bool = True
    client_certificates: bool = False
    proxy_header: str | None = None
    proxy_groups_header: str | None = None
    proxy_addresses: Sequence[str] = ("127.0.0.1", "::1")
    users: dict[str, str] = field(default_factory=dict)
    max_message_anonymous: int = 64 * 1024
    max_message: int = 16 * 1024 * 1024
    max_message_roles: dict[str, int] = field(default_factory=dict)
    defined_at: tuple[str, int] = field(default=("<unknown>", 0), compare=False)

    def __post_init__(self) -> None:
        self.defined_at = caller_location(3)

    def largest_message(self) -> int:
        """What the gRPC server must accept at all (each caller's own limit is checked after)."""
        return max([self.max_message_anonymous, self.max_message, *self.max_message_roles.values()])

    def problems(self) -> list[str]:
        out = []
        limits = {"max_message_anonymous": self.max_message_anonymous, "max_message": self.max_message}
        if not isinstance(self.max_message_roles, dict):
            out.append("Auth: max_message_roles must be a dict of role -> bytes, e.g. {'viewer': 65536}")
        else:
            limits.update({f"max_message_roles[{r!r}]": v for r, v in self.max_message_roles.items()})
        for name, value in limits.items():
            if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_MESSAGE_LIMIT:
                out.append(f"Auth: {name} must be a number of bytes between 1 and {MAX_MESSAGE_LIMIT}, not {value!r}")
        for attr in ("proxy_header", "proxy_groups_header"):
            value = getattr(self, attr)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                out.append(f"Auth: {attr} must be a header name such as 'X-Remote-User', not {value!r}")
        if not isinstance(self.users, dict):
            out.append("Auth: users must be a dict of user name -> password hash")
        return out


class WorkerSecretError(Exception):
    """A worker's Secret(NAME) is in no secrets provider."""


def resolve_worker_secrets(workers: Sequence[WorkerDecl], providers: Sequence[Any]) -> list[WorkerDecl]:
    """Workers whose secret is ``Secret("name")`` get the value from the secrets providers (first
    match), as steps do; the configuration file then holds no worker secret in clear."""
    out = []
    for w in workers:
        if isinstance(w.secret, Secret):
            value = next((v for p in providers if (v := p.get(w.secret.name)) is not None), None)
            if not value:
                raise WorkerSecretError(
                    f"worker {w.name!r}: secret {w.secret.name!r} is in none of the secretsProviders")
            w = copy.copy(w)  # the configuration keeps its Secret; the registry gets the value
            w.secret = value
        out.append(w)
    return out
