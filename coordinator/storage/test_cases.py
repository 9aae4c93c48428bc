"""Test case rows: the cases Test steps read from JUnit reports, per build (test history)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from coordinator.domain.model import Build, CaseResult, CaseRun, Step
from coordinator.storage import schema
from coordinator.storage.writer import Tx

t_cases = schema.test_cases
t_builds = schema.builds

_INSERT = t_cases.insert()
# A case's full name as the domain spells it (CaseResult.full_name).
_FULL_NAME = sa.case((t_cases.c.classname == "", t_cases.c.name), else_=t_cases.c.classname + "." + t_cases.c.name)


def add(build: Build, step: Step, revision: str, cases: Sequence[CaseResult]) -> Any:
    """A writer operation storing a step's cases: one executemany, so a 20 000-case report is
    one batched insert, not 20 000 round trips."""
    rows = [
        {
            "build_id": build.id, "step_id": step.id, "name": c.name, "classname": c.classname,
            "outcome": c.outcome, "duration": c.duration, "message": c.message, "revision": revision,
        }
        for c in cases
    ]

    def op(tx: Tx) -> None:
        if rows:
            tx.conn.execute(_INSERT, rows)

    return op


def runs(c: sa.Connection, builder: str, builds: int, names: Sequence[str] | None) -> list[CaseRun]:
    """The cases of the builder's last `builds` builds that recorded any, newest build first."""
    recent = (
        sa.select(t_builds.c.id, t_builds.c.number)
        .where(t_builds.c.builder == builder, sa.exists().where(t_cases.c.build_id == t_builds.c.id))
        .order_by(t_builds.c.number.desc())
        .limit(builds)
    )
    numbers = {r.id: r.number for r in c.execute(recent)}
    if not numbers:
        return []
    stmt = sa.select(
        t_cases.c.build_id, t_cases.c.name, t_cases.c.classname, t_cases.c.outcome, t_cases.c.duration,
        t_cases.c.message, t_cases.c.revision,
    ).where(t_cases.c.build_id.in_(list(numbers)))
    if names is not None:
        stmt = stmt.where(_FULL_NAME.in_(list(names)))
    rows = sorted(c.execute(stmt.order_by(t_cases.c.id)), key=lambda r: -numbers[r.build_id])
    return [
        CaseRun(numbers[r.build_id], r.revision, CaseResult(r.name, r.classname, r.outcome, r.duration, r.message))
        for r in rows
    ]


def failing(c: sa.Connection, builder: str, number: int, limit: int) -> list[CaseResult]:
    stmt = (
        sa.select(t_cases.c.name, t_cases.c.classname, t_cases.c.outcome, t_cases.c.duration, t_cases.c.message)
        .join(t_builds, t_builds.c.id == t_cases.c.build_id)
        .where(t_builds.c.builder == builder, t_builds.c.number == number, t_cases.c.outcome.in_(("failed", "error")))
        .order_by(t_cases.c.id)
        .limit(limit)
    )
    return [CaseResult(r.name, r.classname, r.outcome, r.duration, r.message) for r in c.execute(stmt)]
