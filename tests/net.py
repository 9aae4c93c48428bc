"""Loopback ports for tests, held rather than guessed.

Binding port 0, closing the socket and using the number later races with every other process on
the machine: the kernel may hand that port to someone else in between. A port *reserved* here
stays bound by the test (not listening) for as long as it needs it:
- connecting to it is refused, so it is a reliable "nobody listens here";
- the kernel gives it to no one else (neither `bind(("", 0))` nor an outgoing connection);
- a server of ours can still listen on it: the reservation sets SO_REUSEADDR, which Linux lets
  a listener share with sockets that do not listen (the coordinator and `gantry up` bind with
  SO_REUSEADDR too); or, in-process, it can serve on the reserved socket itself.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager


def reserve_port(host: str = "127.0.0.1") -> socket.socket:
    """A socket bound to a free port of `host` and kept there, not listening; close it when done."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return sock


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


@contextmanager
def reserved_port(host: str = "127.0.0.1") -> Iterator[int]:
    """A port nobody listens on and nobody else can take, for the duration of the block."""
    with reserve_port(host) as sock:
        yield port_of(sock)
