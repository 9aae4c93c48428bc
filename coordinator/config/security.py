"""Security settings a configuration file declares: ``MasterConfig(tls=TLS(...))``.

The command line's ``--tls-cert/--tls-key/--tls-client-ca`` override ``tls`` when given."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from coordinator.domain.location import caller_location


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
