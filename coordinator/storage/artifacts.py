"""Artifact rows: which files a build stored on the coordinator (name, size, sha256, step)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from coordinator.domain.model import Artifact, Build, Step
from coordinator.storage import schema
from coordinator.storage.writer import Tx

t_art = schema.artifacts
t_builds = schema.builds
t_steps = schema.steps


def add(build: Build, step: Step, name: str, size: int, sha256: str, at: float) -> Any:
    """A writer operation recording an artifact (replacing one of the same name in the build)."""

    def op(tx: Tx) -> Artifact:
        c = tx.conn
        c.execute(t_art.delete().where(t_art.c.build_id == build.id, t_art.c.name == name))
        c.execute(t_art.insert().values(build_id=build.id, step_id=step.id, name=name, size=size,
                                        sha256=sha256, created_at=at))
        return Artifact(build.builder, build.number, step.name, name, size, sha256, at)

    return op


def _select() -> sa.Select[Any]:
    return (
        sa.select(t_art, t_builds.c.builder, t_builds.c.number, t_steps.c.name.label("step_name"))
        .join(t_builds, t_builds.c.id == t_art.c.build_id)
        .join(t_steps, t_steps.c.id == t_art.c.step_id)
    )


def _row(r: Any) -> Artifact:
    return Artifact(r.builder, r.number, r.step_name, r.name, r.size, r.sha256, r.created_at)


def list_for_build(c: sa.Connection, builder: str, number: int) -> list[Artifact]:
    stmt = _select().where(t_builds.c.builder == builder, t_builds.c.number == number).order_by(t_art.c.id)
    return [_row(r) for r in c.execute(stmt)]


def get(c: sa.Connection, builder: str, number: int, name: str) -> Artifact | None:
    stmt = _select().where(t_builds.c.builder == builder, t_builds.c.number == number, t_art.c.name == name)
    r = c.execute(stmt).first()
    return None if r is None else _row(r)


def list_by_build_id(c: sa.Connection, build_id: int, builder: str, number: int) -> list[Artifact]:
    stmt = (
        sa.select(t_art, t_steps.c.name.label("step_name"))
        .join(t_steps, t_steps.c.id == t_art.c.step_id)
        .where(t_art.c.build_id == build_id)
        .order_by(t_art.c.id)
    )
    return [Artifact(builder, number, r.step_name, r.name, r.size, r.sha256, r.created_at) for r in c.execute(stmt)]
