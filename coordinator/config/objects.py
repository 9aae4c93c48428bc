"""Configuration objects that are not domain behaviour: workers and the whole configuration."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from coordinator.domain.builds.builders import Builder
from coordinator.domain.location import caller_location
from coordinator.domain.scheduling.schedulers import Scheduler
from coordinator.domain.workers.sessions import DEFAULT_MISSING_TIMEOUT, WorkerDecl


class Worker(WorkerDecl):
    """``Worker("name", "secret", max_builds=2, properties={...})`` — as in Buildbot.

    ``missing_timeout`` (seconds, default 300): how long the worker's running builds wait for it
    to reconnect after a lost connection before they end RETRY (Buildbot's name for how long a
    worker may be missing)."""

    def __init__(
        self,
        name: str,
        secret: str = "",
        max_builds: int = 1,
        properties: dict[str, object] | None = None,
        *,
        password: str | None = None,
        missing_timeout: float = DEFAULT_MISSING_TIMEOUT,
    ) -> None:
        super().__init__(name=name, secret=password if password is not None else secret,
                         max_builds=max_builds, properties=dict(properties or {}),
                         missing_timeout=missing_timeout)
        self.defined_at = caller_location()


@dataclass
class MasterConfig:
    workers: Sequence[WorkerDecl] = ()
    builders: Sequence[Builder] = ()
    schedulers: Sequence[Scheduler] = ()
    title: str = "Gantry"
    defined_at: tuple[str, int] = field(default=("<unknown>", 0))
    # MailNotifier(...) / HttpStatusPush(...) objects (the notifiers package).
    notifiers: Sequence[Any] = ()
    # Where the web UI shows builds (Buildbot's buildbotURL); messages link to URL/builders/B/builds/N.
    url: str = ""
    # Buildbot's www: dict(port=8010, change_hook_dialects={"github": {"secret": ...}, ...});
    # None: no HTTP server (unless `coordinator start --http`). See coordinator/web/settings.py.
    www: dict[str, Any] | None = None
    # Where Secret("name") values come from, first match wins (Buildbot's secretsProviders).
    secretsProviders: Sequence[Any] = ()
    # MasterShellCommand runs commands on the coordinator host: off unless set.
    allow_master_commands: bool = False
    # GitPoller(...) objects (Buildbot's c['change_source']); one object or a list.
    change_source: Any = ()
    # gRPC HOST:PORT when `coordinator start` has no --listen (Buildbot's c['protocols'] port).
    listen: str | None = None
    # The database when `coordinator start` has no --db (Buildbot's c['db']['db_url']); a
    # relative SQLite path is relative to the configuration file's directory.
    db_url: str | None = None
    # OldBuildCanceller(...) / FailingBuildsetCanceller(...) (Buildbot's services of those names).
    cancellers: Sequence[Any] = ()
    # TLS(cert=..., key=..., client_ca=...) for the gRPC and HTTP ports (coordinator/config/security.py).
    tls: Any = None
    # Auth(...) (who is asking) and Authz(...) (who may do what): docs/security.md.
    auth: Any = None
    authz: Any = None
    # Retention(...) rules: how long builds, logs and artifacts are kept (the janitor deletes
    # the rest); the first rule naming a builder applies, a rule naming none is the default.
    retention: Sequence[Any] = ()

    def __post_init__(self) -> None:
        self.defined_at = caller_location(3)
        self.workers = list(self.workers)
        self.builders = list(self.builders)
        self.schedulers = list(self.schedulers)
        self.notifiers = list(self.notifiers)
        self.secretsProviders = list(self.secretsProviders)
        self.cancellers = list(self.cancellers)
        self.retention = list(self.retention) if isinstance(self.retention, list | tuple) else [self.retention]
        cs = self.change_source
        self.change_source = list(cs) if isinstance(cs, list | tuple) else [cs]
