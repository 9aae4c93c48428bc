"""The channel to the coordinator: plaintext, TLS (`--tls-ca`), or mutual TLS (`--tls-cert` and
`--tls-key` as well). Kept apart from the stream logic in connection.py, which only calls
`open_channel` and, on a failed dial, `describe_failure` for a sentence an operator can act on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc

from worker_agent.options import AgentOptions


class TlsSetupError(Exception):
    """A TLS file named on the command line cannot be used."""


def _read(path: Path | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TlsSetupError(f"cannot read the TLS {what} {path}: {exc.strerror or exc}") from None


def credentials(opts: AgentOptions) -> grpc.ChannelCredentials | None:
    if not opts.tls:
        return None
    return grpc.ssl_channel_credentials(
        _read(opts.tls_ca, "CA"), _read(opts.tls_key, "client key"), _read(opts.tls_cert, "client certificate")
    )


def open_channel(opts: AgentOptions, options: list[tuple[str, Any]]) -> grpc.aio.Channel:
    creds = credentials(opts)
    if creds is None:
        return grpc.aio.insecure_channel(opts.coordinator, options=options)
    return grpc.aio.secure_channel(opts.coordinator, creds, options=options)


def describe_failure(opts: AgentOptions, details: str) -> str:
    """Name a TLS mismatch hidden in an UNAVAILABLE's details ('' when it is not one)."""
    where = opts.coordinator
    if "WRONG_VERSION_NUMBER" in details:
        return f"{where} does not speak TLS (drop --tls-ca, or give the coordinator --tls-cert)"
    if "certificate has expired" in details:
        return f"the certificate of {where} has expired"
    if "not in peer certificate" in details or "Hostname Verification" in details:
        return f"the certificate of {where} is not valid for that host name"
    if "CERTIFICATE_VERIFY_FAILED" in details or "certificate verify failed" in details:
        return f"the certificate of {where} is not trusted by --tls-ca or has expired"
    if "Handshake failed" in details or "TSI_" in details:
        return f"TLS handshake with {where} failed (check --tls-ca and the certificates)"
    if "Socket closed" in details and not opts.tls:
        return f"{where} closed the connection: it may require TLS (--tls-ca FILE)"
    return ""
