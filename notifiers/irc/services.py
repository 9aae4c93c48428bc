"""The commands' view of the coordinator: its own domain services (the same ones the gRPC
ControlService uses), so a force from IRC takes the path of `gantry force`."""

from __future__ import annotations

from coordinator.domain.model import Build
from coordinator.domain.scheduling.build_control import BuildControl
from coordinator.domain.status.queries import Queries


class CoordinatorCommands:
    def __init__(self, queries: Queries, control: BuildControl) -> None:
        self.queries = queries
        self.control = control

    def builder_names(self) -> list[str]:
        return [b.name for b in self.queries.list_builders()]

    async def recent_builds(self, builder: str, limit: int) -> list[Build]:
        return await self.queries.list_builds(builder, limit)

    async def get_build(self, builder: str, number: int) -> Build:
        return await self.queries.get_build(builder, number)

    def pending_count(self, builder: str) -> int:
        return self.queries.pending_count(builder)

    async def force(self, builder: str, reason: str, owner: str) -> tuple[int, int]:
        return await self.control.force_build(builder, reason=reason, owner=owner)

    async def stop(self, builder: str, number: int, reason: str) -> bool:
        return await self.control.stop_build(builder, number, reason)
