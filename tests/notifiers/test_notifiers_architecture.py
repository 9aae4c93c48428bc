"""The dependency rule of the notifiers package (checked like tests/test_architecture.py):
notifiers import the standard library, coordinator.domain, themselves, aiosmtplib and aiohttp - never
SQLAlchemy, grpc, protos or the rest of the coordinator; storage is reached only through the
ports of coordinator.domain.ports (BuildHistory, LogReads, EventCursor, Outbox)."""

from __future__ import annotations

from tests.test_architecture import STDLIB, imports_under


def test_notifiers_import_only_stdlib_domain_and_aiosmtplib() -> None:
    allowed_tops = STDLIB | {"notifiers", "aiosmtplib", "aiohttp"}
    bad = [
        str(i)
        for i in imports_under("notifiers")
        if not (i.top in allowed_tops or i.module == "coordinator.domain"
                or i.module.startswith("coordinator.domain."))
    ]
    assert bad == []
