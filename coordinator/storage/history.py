"""Reads of a builder's history for estimates (ETAs, expected starts)."""

from __future__ import annotations

import sqlalchemy as sa

from coordinator.domain.model import StepSample
from coordinator.domain.results import Result
from coordinator.storage import schema


def recent_step_durations(conn: sa.Connection, builder: str, builds: int) -> list[StepSample]:
    """The steps that ran in the builder's last `builds` successful builds, in one query.

    Uses the (builder, number) unique index to pick the builds, and (build_id, number) for their
    steps. A build without a step that ran still appears once, with step_name "".
    """
    b, s = schema.builds, schema.steps
    recent = (
        sa.select(b.c.id, b.c.number, (b.c.finished_at - b.c.started_at).label("duration"))
        .where(b.c.builder == builder, b.c.result == int(Result.SUCCESS), b.c.finished_at.is_not(None))
        .order_by(b.c.number.desc())
        .limit(builds)
        .subquery()
    )
    ran = sa.and_(s.c.build_id == recent.c.id, s.c.started_at.is_not(None), s.c.finished_at.is_not(None))
    stmt = sa.select(
        recent.c.number, recent.c.duration, s.c.name, (s.c.finished_at - s.c.started_at).label("step_duration")
    ).select_from(recent.outerjoin(s, ran)).order_by(recent.c.number.desc(), s.c.number)
    return [
        StepSample(int(r.number), float(r.duration), r.name or "",
                   None if r.step_duration is None else float(r.step_duration))
        for r in conn.execute(stmt)
    ]
