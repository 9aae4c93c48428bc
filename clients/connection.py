"""How a client reaches the coordinator: address, TLS trust (and a client certificate for mutual
TLS) and the API token — from flags, else environment variables, else a small config file, as
`kubectl`/`gh` users expect:

    # ~/.config/gantry/config.toml   (or $GANTRY_CONFIG)
    coordinator = "ci.example.org:9989"
    tls_ca = "~/.config/gantry/ca.pem"
    token_file = "~/.config/gantry/token"      # or token = "gty_..."
    # tls_cert = "..."; tls_key = "..."         # mutual TLS

Environment: GANTRY_COORDINATOR, GANTRY_TOKEN, GANTRY_TLS_CA, GANTRY_TLS_CERT, GANTRY_TLS_KEY.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from clients.errors import LocalError

ENV_CONFIG = "GANTRY_CONFIG"
ENV = {"coordinator": "GANTRY_COORDINATOR", "token": "GANTRY_TOKEN", "tls_ca": "GANTRY_TLS_CA",
       "tls_cert": "GANTRY_TLS_CERT", "tls_key": "GANTRY_TLS_KEY"}


def config_path() -> Path:
    if os.environ.get(ENV_CONFIG):
        return Path(os.environ[ENV_CONFIG]).expanduser()
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "gantry" / "config.toml"


@dataclass(frozen=True)
class Tls:
    """Trust `ca` (the system's roots when None) and present `cert`/`key` when given."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        def read(path: Path | None, what: str) -> bytes | None:
            if path is None:
                return None
            try:
                return path.expanduser().read_bytes()
            except OSError as err:
                raise LocalError(f"cannot read the TLS {what} {path}: {err.strerror or err}") from None

        if (self.cert is None) != (self.key is None):
            raise LocalError("a TLS client certificate needs its key (--tls-cert and --tls-key go together)")
        return grpc.ssl_channel_credentials(
            read(self.ca, "CA"), read(self.key, "client key"), read(self.cert, "client certificate")
        )


@dataclass(frozen=True)
class Connection:
    address: str
    token: str = ""
    tls: Tls | None = None


def read_config_file(path: Path | None = None) -> dict[str, Any]:
    path = path or config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as err:
        raise LocalError(f"cannot read {path}: {err.strerror or err}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise LocalError(f"{path}: {err}") from None


def resolve(
    flags: Mapping[str, str | None], *, default_address: str, env: Mapping[str, str] | None = None,
    file: Mapping[str, Any] | None = None,
) -> Connection:
    """Each setting from the first of: flag, environment variable, config file."""
    env = os.environ if env is None else env
    file = read_config_file() if file is None else file

    def pick(key: str) -> str:
        return str(flags.get(key) or env.get(ENV[key]) or file.get(key) or "")

    token = pick("token")
    if not token and file.get("token_file"):
        path = Path(str(file["token_file"])).expanduser()
        try:
            token = path.read_text(encoding="utf-8").strip().splitlines()[0].strip()
        except (OSError, IndexError):
            raise LocalError(f"cannot read a token from {path} (token_file in {config_path()})") from None
    paths: dict[str, Path | None] = {k: Path(v).expanduser() if (v := pick(k)) else None
                                     for k in ("tls_ca", "tls_cert", "tls_key")}
    use_tls = any(paths.values()) or bool(flags.get("tls")) or bool(file.get("tls"))
    tls = Tls(paths["tls_ca"], paths["tls_cert"], paths["tls_key"]) if use_tls else None
    return Connection(pick("coordinator") or default_address, token, tls)


class _TokenInterceptor(
    grpc.aio.UnaryUnaryClientInterceptor,
    grpc.aio.UnaryStreamClientInterceptor,
    grpc.aio.StreamUnaryClientInterceptor,
    grpc.aio.StreamStreamClientInterceptor,
):
    """Adds `authorization: Bearer TOKEN` to every call."""

    def __init__(self, token: str) -> None:
        self._pair = ("authorization", f"Bearer {token}")

    def _details(self, d: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(d.metadata or ()))
        if "authorization" not in metadata:
            metadata.add(*self._pair)
        return grpc.aio.ClientCallDetails(d.method, d.timeout, metadata, d.credentials, d.wait_for_ready)

    async def _call(self, continuation: Callable[..., Any], details: grpc.aio.ClientCallDetails, req: Any) -> Any:
        return await continuation(self._details(details), req)

    intercept_unary_unary = intercept_unary_stream = _call  # type: ignore[assignment]
    intercept_stream_unary = intercept_stream_stream = _call  # type: ignore[assignment]


def open_channel(conn: Connection, options: list[tuple[str, Any]]) -> grpc.aio.Channel:
    interceptors = [_TokenInterceptor(conn.token)] if conn.token else None
    if conn.tls is None:
        return grpc.aio.insecure_channel(conn.address, options=options, interceptors=interceptors)
    return grpc.aio.secure_channel(conn.address, conn.tls.credentials(), options=options, interceptors=interceptors)
