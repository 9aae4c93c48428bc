"""Fixtures of the client tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.net import reserved_port


@pytest.fixture
def up_port() -> Iterator[int]:
    """A port for `gantry up --listen` (which needs a number, not 0), held for the whole test so
    that no other process takes it in between; `gantry up` can still listen on it (tests.net)."""
    with reserved_port() as port:
        yield port
