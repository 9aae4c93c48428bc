"""The coordinator's TLS: one certificate source serving both the gRPC port and the HTTP port,
re-read from disk when the files change (a renewed certificate needs no restart).

gRPC asks `grpc_fetch` on every handshake (grpc's dynamic server credentials); the HTTP server's
SSLContext swaps itself for a freshly built one from its SNI callback, which OpenSSL calls on every
handshake too. Both look at the files' modification times at most once a second.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import grpc

log = logging.getLogger(__name__)
RECHECK_SECONDS = 1.0


class TlsError(Exception):
    """A TLS file is missing, unreadable or does not fit (a key for another certificate)."""


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path
    # Client certificates are verified against this CA when presented (mutual TLS). grpc's
    # Python server asks for one only when it requires it: on gRPC, see require_client_cert.
    client_ca: Path | None = None
    # Refuse a client that presents no certificate (only with client_ca); both ports.
    require_client_cert: bool = False


@dataclass(frozen=True)
class _Loaded:
    cert: bytes
    key: bytes
    client_ca: bytes | None
    stamp: tuple[float, ...]


def _read(path: Path, what: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TlsError(f"cannot read the TLS {what} {path}: {exc.strerror or exc}") from None
    if b"-----BEGIN" not in data:
        raise TlsError(f"the TLS {what} {path} is not a PEM file")
    return data


class CertificateSource:
    """The current certificate, key and client CA, re-read when a file changes. A half-written
    renewal (a key that does not match the new certificate yet) keeps the previous pair."""

    def __init__(self, files: TlsFiles) -> None:
        if files.require_client_cert and files.client_ca is None:
            raise TlsError("--tls-require-client-cert needs --tls-client-ca (the CA that signs client certificates)")
        if files.client_ca is not None and not files.require_client_cert:
            # Said once at start, so that nobody expects certificate logins on gRPC that never come.
            log.warning(
                "client certificates are verified when presented on the HTTP port; the gRPC port asks "
                "for them only with --tls-require-client-cert (grpcio cannot ask for an optional one), "
                "so gRPC callers authenticate by token or worker secret"
            )
        self.files = files
        self._lock = threading.Lock()
        self._checked = 0.0
        self.current = self._load()
        self.generation = 0

    def _paths(self) -> list[Path]:
        paths = [self.files.cert, self.files.key]
        return paths + ([self.files.client_ca] if self.files.client_ca else [])

    def _stamp(self) -> tuple[float, ...]:
        try:
            return tuple(p.stat().st_mtime_ns for p in self._paths())
        except OSError:
            return ()

    def _load(self) -> _Loaded:
        stamp = self._stamp()
        cert = _read(self.files.cert, "certificate")
        key = _read(self.files.key, "key")
        ca = _read(self.files.client_ca, "client CA") if self.files.client_ca else None
        _check_pair(self.files)
        return _Loaded(cert, key, ca, stamp)

    def refresh(self) -> bool:
        """Reload if a file changed since the last look (at most once a second); True if reloaded."""
        now = time.monotonic()
        with self._lock:
            if now - self._checked < RECHECK_SECONDS:
                return False
            self._checked = now
            stamp = self._stamp()
            if not stamp or stamp == self.current.stamp:
                return False
            try:
                self.current = self._load()
            except TlsError as exc:
                log.warning("keeping the previous TLS certificate: %s", exc)
                self.current = _Loaded(self.current.cert, self.current.key, self.current.client_ca, stamp)
                return False
            self.generation += 1
            log.info("TLS certificate reloaded from %s", self.files.cert)
            return True

    # -- gRPC ----------------------------------------------------------------------------------

    def _grpc_config(self) -> grpc.ServerCertificateConfiguration:
        c = self.current
        return grpc.ssl_server_certificate_configuration([(c.key, c.cert)], root_certificates=c.client_ca)

    def grpc_credentials(self) -> grpc.ServerCredentials:
        def fetch() -> grpc.ServerCertificateConfiguration | None:
            return self._grpc_config() if self.refresh() else None

        return grpc.dynamic_ssl_server_credentials(
            self._grpc_config(), fetch, require_client_authentication=self.files.require_client_cert
        )

    # -- HTTP ----------------------------------------------------------------------------------

    def _context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.files.cert, self.files.key)
        if self.files.client_ca is not None:
            ctx.load_verify_locations(cafile=str(self.files.client_ca))
            ctx.verify_mode = ssl.CERT_REQUIRED if self.files.require_client_cert else ssl.CERT_OPTIONAL
        return ctx

    def ssl_context(self) -> ssl.SSLContext:
        """An SSLContext for aiohttp that hands each new connection the latest certificate."""
        outer = self._context()
        state = {"generation": self.generation, "inner": outer}

        def pick(sock: ssl.SSLObject, _name: str | None, _ctx: ssl.SSLContext) -> None:
            self.refresh()
            if state["generation"] != self.generation:
                try:
                    inner = self._context()
                except (OSError, ssl.SSLError) as exc:
                    log.warning("keeping the previous HTTP TLS context: %s", exc)
                else:
                    state["inner"], state["generation"] = inner, self.generation
            if state["inner"] is not outer:
                sock.context = state["inner"]  # type: ignore[assignment]

        outer.sni_callback = pick  # type: ignore[assignment]
        return outer


def _check_pair(files: TlsFiles) -> None:
    """Load the pair as OpenSSL would, to fail at start with a reason rather than at a handshake."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(files.cert, files.key)
    except ssl.SSLError as exc:
        raise TlsError(f"the TLS key {files.key} does not fit the certificate {files.cert} ({exc.reason})") from None
    if files.client_ca is not None:
        try:
            ctx.load_verify_locations(cafile=str(files.client_ca))
        except ssl.SSLError as exc:
            raise TlsError(f"the client CA {files.client_ca} is not a usable certificate ({exc.reason})") from None
