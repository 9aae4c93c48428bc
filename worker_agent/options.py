"""What an agent needs to know to run (built by the CLI, or directly by tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from worker_agent.spool import DEFAULT_LIMIT

DEFAULT_COORDINATOR = "localhost:9989"


@dataclass(frozen=True)
class AgentOptions:
    coordinator: str
    name: str
    secret: str = field(repr=False)  # never in logs
    basedir: Path
    max_builds: int = 0  # 0: as the coordinator's configuration says; a number may only lower it
    labels: tuple[str, ...] = ()
    # Reconnect backoff: starts at backoff_min seconds, doubles up to backoff_max.
    backoff_min: float = 1.0
    backoff_max: float = 60.0
    # Seconds to wait for Welcome after sending Hello.
    welcome_timeout: float = 30.0
    # Outgoing messages queued per connection before senders wait.
    outbox_size: int = 256
    # Unacknowledged output kept on disk per command (worker_agent/spool.py) before the command
    # is slowed down: what a command may print while the coordinator is unreachable.
    spool_limit: int = DEFAULT_LIMIT
    # TLS to the coordinator (worker_agent/channel.py): trust tls_ca (the system's CAs when only
    # `tls` is set); present tls_cert/tls_key for mutual TLS.
    tls: bool = False
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
