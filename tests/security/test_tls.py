"""TLS and mutual TLS on the coordinator's gRPC and HTTP ports, against certificates made now:
trusted, expired, for another host, reloaded without a restart; and the refusal to serve beyond
loopback unprotected."""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest

from clients.client import GantryClient
from clients.connection import Tls
from clients.errors import CoordinatorUnavailable
from coordinator.app import Coordinator
from coordinator.config.objects import MasterConfig
from coordinator.exposure import ExposureError, check_exposure, is_loopback
from coordinator.tls import CertificateSource, TlsError, TlsFiles
from tests.pki import Pair, TestCA


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    return TestCA(tmp_path / "pki")


async def _serve(tmp_path: Path, files: TlsFiles, http: bool = False) -> Coordinator:
    coord = Coordinator(MasterConfig(), tmp_path / "data", "127.0.0.1:0",
                        http="127.0.0.1:0" if http else None, tls=files)
    await coord.start()
    return coord


@pytest.fixture
async def served(tmp_path: Path, ca: TestCA) -> AsyncIterator[tuple[Coordinator, Pair]]:
    pair = ca.issue("server")
    coord = await _serve(tmp_path, TlsFiles(pair.cert, pair.key), http=True)
    try:
        yield coord, pair
    finally:
        await coord.aclose()


async def _list(address: str, tls: Tls | None) -> int:
    async with GantryClient(address, tls=tls, timeout=10) as client:
        return len(await client.list_builders())


async def test_a_client_trusting_the_ca_talks_to_the_tls_coordinator(
    served: tuple[Coordinator, Pair], ca: TestCA
) -> None:
    coord, _ = served
    assert await _list(f"localhost:{coord.port}", Tls(ca.cert)) == 0


async def test_a_plaintext_client_is_told_the_coordinator_may_need_tls(served: tuple[Coordinator, Pair]) -> None:
    coord, _ = served
    with pytest.raises(CoordinatorUnavailable, match="may require TLS"):
        await _list(f"localhost:{coord.port}", None)


async def test_a_tls_client_is_told_a_plaintext_coordinator_does_not_speak_tls(tmp_path: Path, ca: TestCA) -> None:
    coord = Coordinator(MasterConfig(), tmp_path / "data", "127.0.0.1:0")
    await coord.start()
    try:
        with pytest.raises(CoordinatorUnavailable, match="does not speak TLS"):
            await _list(f"localhost:{coord.port}", Tls(ca.cert))
    finally:
        await coord.aclose()


async def test_a_certificate_for_another_host_is_refused(tmp_path: Path, ca: TestCA) -> None:
    pair = ca.issue("elsewhere", hosts=("ci.example.org",))
    coord = await _serve(tmp_path, TlsFiles(pair.cert, pair.key))
    try:
        with pytest.raises(CoordinatorUnavailable, match="not valid for that host name"):
            await _list(f"localhost:{coord.port}", Tls(ca.cert))
    finally:
        await coord.aclose()


async def test_an_expired_certificate_is_refused(tmp_path: Path, ca: TestCA) -> None:
    pair = ca.issue("old", expired=True)
    coord = await _serve(tmp_path, TlsFiles(pair.cert, pair.key))
    try:
        with pytest.raises(CoordinatorUnavailable, match="has expired"):
            await _list(f"localhost:{coord.port}", Tls(ca.cert))
    finally:
        await coord.aclose()


async def test_a_certificate_from_another_ca_is_refused(served: tuple[Coordinator, Pair], tmp_path: Path) -> None:
    coord, _ = served
    other = TestCA(tmp_path / "other", "Other CA")
    with pytest.raises(CoordinatorUnavailable, match="not trusted"):
        await _list(f"localhost:{coord.port}", Tls(other.cert))


async def test_mutual_tls_demands_a_client_certificate_signed_by_the_client_ca(tmp_path: Path, ca: TestCA) -> None:
    server = ca.issue("server")
    client_ca = TestCA(tmp_path / "clients", "Clients CA")
    good = client_ca.issue("alice", client=True)
    stranger = TestCA(tmp_path / "strangers", "Stranger CA").issue("mallory", client=True)
    coord = await _serve(tmp_path, TlsFiles(server.cert, server.key, client_ca.cert, require_client_cert=True))
    address = f"localhost:{coord.port}"
    try:
        assert await _list(address, Tls(ca.cert, good.cert, good.key)) == 0
        with pytest.raises(CoordinatorUnavailable):
            await _list(address, Tls(ca.cert))
        with pytest.raises(CoordinatorUnavailable):
            await _list(address, Tls(ca.cert, stranger.cert, stranger.key))
    finally:
        await coord.aclose()


async def test_the_http_port_serves_tls_with_the_same_certificate(served: tuple[Coordinator, Pair], ca: TestCA) -> None:
    coord, _ = served
    ctx = ssl.create_default_context(cafile=str(ca.cert))
    port = coord.http_address.rpartition(":")[2]
    async with aiohttp.ClientSession() as http:
        async with http.post(f"https://localhost:{port}/change_hook/nope", ssl=ctx) as resp:
            assert resp.status in (400, 404)
        with pytest.raises(aiohttp.ClientError):
            async with http.post(f"http://localhost:{port}/change_hook/nope") as resp:
                await resp.read()


def _served_serial(port: int, ca: TestCA) -> int:
    """The serial number of the certificate the server presents now (a fresh handshake)."""
    import socket

    from cryptography import x509

    ctx = ssl.create_default_context(cafile=str(ca.cert))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            der = s.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def _serial(path: Path) -> int:
    from cryptography import x509

    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


async def test_a_renewed_certificate_is_served_without_a_restart(
    served: tuple[Coordinator, Pair], ca: TestCA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from coordinator import tls

    monkeypatch.setattr(tls, "RECHECK_SECONDS", 0.0)
    coord, pair = served
    http_port = int(coord.http_address.rpartition(":")[2])
    first = _serial(pair.cert)
    assert await asyncio.to_thread(_served_serial, http_port, ca) == first
    renewed = TestCA.issue(ca, "renewed")
    os.replace(renewed.key, pair.key)
    os.replace(renewed.cert, pair.cert)
    new = _serial(pair.cert)
    assert new != first
    assert await asyncio.to_thread(_served_serial, http_port, ca) == new
    # gRPC: the fetcher is asked at each handshake; a new client makes a new handshake.
    assert await _list(f"localhost:{coord.port}", Tls(ca.cert)) == 0
    assert coord.tls is not None and coord.tls.current.cert == pair.cert.read_bytes()


def test_a_key_that_does_not_fit_its_certificate_is_refused_at_start(ca: TestCA) -> None:
    a, b = ca.issue("a"), ca.issue("b")
    with pytest.raises(TlsError, match="does not fit the certificate"):
        CertificateSource(TlsFiles(a.cert, b.key))
    with pytest.raises(TlsError, match="cannot read the TLS certificate"):
        CertificateSource(TlsFiles(a.cert.with_name("missing.pem"), a.key))


def test_a_client_ca_without_required_certificates_says_what_grpc_does(
    ca: TestCA, caplog: pytest.LogCaptureFixture
) -> None:
    pair = ca.issue("localhost")
    CertificateSource(TlsFiles(pair.cert, pair.key, client_ca=ca.cert, require_client_cert=True))
    assert "--tls-require-client-cert" not in caplog.text
    CertificateSource(TlsFiles(pair.cert, pair.key, client_ca=ca.cert))
    assert "the gRPC port asks for them only with --tls-require-client-cert" in caplog.text


def test_loopback_addresses() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("[::1]") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("") and not is_loopback("[::]")


def test_serving_beyond_loopback_needs_tls_and_auth_or_insecure() -> None:
    check_exposure({"gRPC": "127.0.0.1:9989"}, tls=False, auth=False, insecure=False)
    with pytest.raises(ExposureError, match=r"without TLS \(--tls-cert .*and authentication"):
        check_exposure({"gRPC": "0.0.0.0:9989"}, tls=False, auth=False, insecure=False)
    with pytest.raises(ExposureError, match=r"HTTP on 0.0.0.0:8010 beyond loopback without authentication"):
        check_exposure({"gRPC": "127.0.0.1:1", "HTTP": "0.0.0.0:8010"}, tls=True, auth=False, insecure=False)
    check_exposure({"gRPC": "0.0.0.0:9989"}, tls=True, auth=True, insecure=False)
    check_exposure({"gRPC": "0.0.0.0:9989"}, tls=False, auth=False, insecure=True)


async def test_the_coordinator_refuses_to_start_exposed_without_protection(tmp_path: Path) -> None:
    coord = Coordinator(MasterConfig(), tmp_path / "data", "0.0.0.0:0")
    with pytest.raises(ExposureError, match="--insecure"):
        await coord.start()
    await coord.aclose()
    assert not (tmp_path / "data").exists()  # refused before touching anything


async def test_a_client_certificate_is_an_identity_with_its_groups(tmp_path: Path, ca: TestCA) -> None:
    from clients.errors import PermissionDenied
    from coordinator.api.interceptors.auth import organizational_units
    from coordinator.config.security import Auth
    from coordinator.domain.auth import actions
    from coordinator.domain.auth.authz import Allow, Authz, RolesFromGroups

    assert organizational_units("CN=a,OU=dev,O=x,OU=ops\\, eu") == ("dev", "ops, eu")
    server = ca.issue("server")
    admin = ca.issue("ada", client=True, org_units=("admin",))
    viewer = ca.issue("vic", client=True, org_units=("viewer",))
    cfg = MasterConfig(auth=Auth(tokens=False, client_certificates=True), authz=Authz(
        roles=[RolesFromGroups()], rules=[Allow(actions.READ, roles=["viewer"]), Allow(actions.ALL, roles=["admin"])]))
    # gRPC asks for client certificates only when it requires them (see docs/security.md).
    coord = Coordinator(cfg, tmp_path / "data", "127.0.0.1:0",
                        tls=TlsFiles(server.cert, server.key, ca.cert, require_client_cert=True))
    await coord.start()
    address = f"localhost:{coord.port}"
    try:
        async with GantryClient(address, tls=Tls(ca.cert, viewer.cert, viewer.key), timeout=10) as client:
            assert await client.list_builders() == []
            with pytest.raises(PermissionDenied, match="vic may not force"):
                await client.force_build("any")
        async with GantryClient(address, tls=Tls(ca.cert, admin.cert, admin.key), timeout=10) as client:
            assert await client.list_builders() == []
    finally:
        await coord.aclose()


class _Bearer(grpc.UnaryUnaryClientInterceptor, grpc.StreamStreamClientInterceptor,  # type: ignore[misc]
              grpc.UnaryStreamClientInterceptor):
    """Adds `authorization: Bearer …` to every call, reflection's included (grpcurl's -H)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def _details(self, details: Any) -> Any:
        md = [*(details.metadata or ()), ("authorization", f"Bearer {self.token}")]
        return details._replace(metadata=md)

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)


def _third_party(address: str, ca: Path | None, token: str = "") -> tuple[list[str], Any]:
    """What grpcurl does, with grpc_requests (a generic reflection client, not ours): list the
    services through reflection, then call ListBuilders knowing nothing but what reflection said."""
    from google.protobuf import descriptor_pool
    from grpc_requests import Client

    client = Client(address, ssl=ca is not None, lazy=True,
                    credentials={"root_certificates": ca.read_bytes()} if ca else None,
                    descriptor_pool=descriptor_pool.DescriptorPool(),  # nothing of ours preloaded
                    interceptors=[_Bearer(token)] if token else None,
                    channel_options=[("grpc.max_reconnect_backoff_ms", 200)])
    try:
        services = list(client.service_names)
        return services, client.request("gantry.v1.ControlService", "ListBuilders", {}, timeout=10)
    finally:
        client.channel.close()


async def test_a_third_party_reflection_client_works_over_tls_under_the_read_rule(
    tmp_path: Path, ca: TestCA
) -> None:
    from coordinator.config.security import Auth
    from coordinator.domain.auth.authz import Allow, Authz, RolesFromGroups

    server = ca.issue("server")
    cfg = MasterConfig(auth=Auth(), authz=Authz(roles=[RolesFromGroups()], rules=[Allow("read", roles=["viewer"])]))
    coord = Coordinator(cfg, tmp_path / "data", "127.0.0.1:0", tls=TlsFiles(server.cert, server.key))
    await coord.start()
    address = f"localhost:{coord.port}"
    try:
        assert coord.gate is not None and coord.gate.tokens is not None
        token, _ = await coord.gate.tokens.create("vera", ["viewer"])
        services, reply = await asyncio.to_thread(_third_party, address, ca.cert, token)
        assert "gantry.v1.ControlService" in services and "gantry.v1.StatusService" in services
        assert reply == {}  # no builders configured: an empty ListBuildersResponse, as JSON
        # Reflection is a read: without a token, refused.
        with pytest.raises(grpc.RpcError) as anonymous:
            await asyncio.to_thread(_third_party, address, ca.cert)
        assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
        # Plaintext to a TLS port, and a server certificate from a CA the client does not trust.
        other = TestCA(tmp_path / "other", "Other CA")
        for refused_ca in (None, other.cert):
            with pytest.raises(grpc.RpcError) as refused:
                await asyncio.to_thread(_third_party, address, refused_ca, token)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    finally:
        await coord.aclose()
