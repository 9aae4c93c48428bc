"""Gantry clients: the `GantryClient` library and the `gantry` command line.

This package depends only on the standard library, grpc, protobuf, rich and `protos`: it is
installed on machines that never run a coordinator. Names below load lazily, so that the CLI
can configure grpc (its log verbosity) before grpc is first imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clients.client import GantryClient
    from clients.errors import CoordinatorUnavailable, GantryError
    from clients.models import (
        Build,
        Builder,
        Change,
        Channel,
        Event,
        ForceResult,
        LogChunk,
        Property,
        Result,
        SourceStamp,
        Step,
        Worker,
    )

_EXPORTS = {
    "GantryClient": "clients.client",
    "CoordinatorUnavailable": "clients.errors",
    "GantryError": "clients.errors",
    **{
        name: "clients.models"
        for name in (
            "Build", "Builder", "Change", "Channel", "Event", "ForceResult", "LogChunk",
            "Property", "Result", "SourceStamp", "Step", "Worker",
        )
    },
}

__all__ = [
    "Build", "Builder", "Change", "Channel", "CoordinatorUnavailable", "Event", "ForceResult",
    "GantryClient", "GantryError", "LogChunk", "Property", "Result", "SourceStamp", "Step",
    "Worker",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'clients' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
