"""Secure by default beyond loopback: a coordinator that anyone on the network can reach must
encrypt (TLS) and know who is asking (auth), unless the operator says `--insecure` (they run
their own TLS proxy in front, for instance). On loopback alone nothing is asked (`gantry up`,
tests, local experiments)."""

from __future__ import annotations

import ipaddress
import socket


class ExposureError(Exception):
    """The coordinator would serve the network without TLS or without auth."""


def is_loopback(host: str) -> bool:
    """True when every address `host` names is a loopback address ('' and 0.0.0.0 are not)."""
    host = host.strip("[]")
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return False
    return bool(infos) and all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos)


def check_exposure(listen: dict[str, str], *, tls: bool, auth: bool, insecure: bool) -> None:
    """`listen`: what -> HOST:PORT (e.g. {"gRPC": "0.0.0.0:9989"}). Raises ExposureError naming the
    option to add when a non-loopback address would be served without TLS or without auth."""
    if insecure:
        return
    exposed = [f"{what} on {address}" for what, address in listen.items()
               if not is_loopback(address.rpartition(":")[0])]
    if not exposed:
        return
    missing = []
    if not tls:
        missing.append("TLS (--tls-cert FILE --tls-key FILE, or tls=TLS(...) in the config)")
    if not auth:
        missing.append("authentication (auth=Auth(...) in the config; see docs/security.md)")
    if missing:
        raise ExposureError(
            f"refusing to serve {', '.join(exposed)} beyond loopback without {' and '.join(missing)}; "
            "add it, listen on 127.0.0.1, or pass --insecure if a TLS proxy you trust stands in front"
        )
