"""The database schema and its versioned migrations.

Why not Alembic: the schema is created and upgraded by the coordinator itself at start-up, on
SQLite and PostgreSQL alike, with no extra tool for users to run. Each migration is a function
that takes a connection; `schema_version` records which have run. Add new ones at the end.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import sqlalchemy as sa

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version", metadata, sa.Column("version", sa.Integer, nullable=False)
)

changes = sa.Table(
    "changes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("author", sa.String(256), nullable=False),
    sa.Column("committer", sa.String(256), nullable=False, default=""),
    sa.Column("comments", sa.Text, nullable=False, default=""),
    sa.Column("files_json", sa.Text, nullable=False, default="[]"),
    sa.Column("revision", sa.String(256), nullable=False),
    sa.Column("branch", sa.String(256), nullable=False),
    sa.Column("repository", sa.String(1024), nullable=False),
    sa.Column("project", sa.String(256), nullable=False, default=""),
    sa.Column("codebase", sa.String(256), nullable=False, default=""),
    sa.Column("category", sa.String(256), nullable=False, default=""),
    sa.Column("when_ts", sa.Float, nullable=False),
    sa.Column("properties_json", sa.Text, nullable=False, default="{}"),
    sa.Column("revlink", sa.String(1024), nullable=False, default=""),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("change_ids_json", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

buildsets = sa.Table(
    "buildsets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("scheduler", sa.String(256), nullable=False),
    sa.Column("submitted_at", sa.Float, nullable=False),
    sa.Column("sourcestamps_json", sa.Text, nullable=False),
    sa.Column("properties_json", sa.Text, nullable=False),
    sa.Column("change_ids_json", sa.Text, nullable=False),
    sa.Column("complete", sa.Boolean, nullable=False, default=False),
    sa.Column("result", sa.Integer, nullable=True),
    sa.Column("completed_at", sa.Float, nullable=True),
)

buildrequests = sa.Table(
    "buildrequests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("buildset_id", sa.Integer, sa.ForeignKey("buildsets.id"), nullable=False),
    sa.Column("builder", sa.String(256), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False, default=0),
    sa.Column("submitted_at", sa.Float, nullable=False),
    # The coordinator that claimed the request; claiming is one conditional UPDATE.
    sa.Column("claimed_by", sa.String(128), nullable=True),
    sa.Column("claimed_at", sa.Float, nullable=True),
    sa.Column("complete", sa.Boolean, nullable=False, default=False),
    sa.Column("result", sa.Integer, nullable=True),
    sa.Column("completed_at", sa.Float, nullable=True),
    sa.Index("buildrequests_pending", "complete", "claimed_by"),
    sa.Index("buildrequests_buildset", "buildset_id"),
)

builds = sa.Table(
    "builds",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("builder", sa.String(256), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("worker", sa.String(256), nullable=False),
    sa.Column("buildrequest_id", sa.Integer, sa.ForeignKey("buildrequests.id"), nullable=False),
    sa.Column("buildset_id", sa.Integer, sa.ForeignKey("buildsets.id"), nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float, nullable=True),
    sa.Column("result", sa.Integer, nullable=True),
    sa.Column("state_string", sa.Text, nullable=False, default=""),
    sa.Column("properties_json", sa.Text, nullable=False, default="[]"),
    sa.UniqueConstraint("builder", "number", name="builds_builder_number"),
)

steps = sa.Table(
    "steps",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("build_id", sa.Integer, sa.ForeignKey("builds.id"), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("state_string", sa.Text, nullable=False, default=""),
    sa.Column("started_at", sa.Float, nullable=True),
    sa.Column("finished_at", sa.Float, nullable=True),
    sa.Column("result", sa.Integer, nullable=True),
    sa.Column("hidden", sa.Boolean, nullable=False, default=False),
    sa.Column("urls_json", sa.Text, nullable=False, default="[]"),
    sa.UniqueConstraint("build_id", "number", name="steps_build_number"),
)

logs = sa.Table(
    "logs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("step_id", sa.Integer, sa.ForeignKey("steps.id"), nullable=False),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("type", sa.String(1), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False, default=0),
    sa.Column("complete", sa.Boolean, nullable=False, default=False),
    sa.UniqueConstraint("step_id", "name", name="logs_step_name"),
)

logchunks = sa.Table(
    "logchunks",
    metadata,
    sa.Column("log_id", sa.Integer, sa.ForeignKey("logs.id"), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("channel", sa.SmallInteger, nullable=False),
    sa.Column("offset", sa.BigInteger, nullable=False),
    sa.Column("channel_offset", sa.BigInteger, nullable=False),
    sa.Column("length", sa.Integer, nullable=False),
    # 0 = raw, 1 = zlib
    sa.Column("compressed", sa.SmallInteger, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    # Version 12: when the chunk's bytes were produced (see _v12_log_times); NULL before it.
    sa.Column("marks", sa.Text, nullable=True),
    sa.Index("logchunks_channel", "log_id", "channel", "channel_offset"),
)

workers = sa.Table(
    "workers",
    metadata,
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("info_json", sa.Text, nullable=False, default="{}"),
    sa.Column("connected", sa.Boolean, nullable=False, default=False),
    sa.Column("since", sa.Float, nullable=True),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("builder", sa.String(256), nullable=False, default=""),
    sa.Column("build_number", sa.Integer, nullable=False, default=0),
    sa.Column("buildset_id", sa.Integer, nullable=False, default=0),
    sa.Column("step_number", sa.Integer, nullable=False, default=-1),
    sa.Column("step_name", sa.String(256), nullable=False, default=""),
    sa.Column("result", sa.Integer, nullable=True),
    sa.Column("worker", sa.String(256), nullable=False, default=""),
    sa.Column("details_json", sa.Text, nullable=False, default="{}"),
)


def _v1_initial(conn: sa.Connection) -> None:
    # An explicit list: later versions add tables to the same metadata, never to version 1.
    v1 = [changes, idempotency_keys, buildsets, buildrequests, builds, steps, logs, logchunks,
          workers, events]
    metadata.create_all(conn, tables=v1)


# Version 2: notifications (mail, http push) queued for background delivery, and the id of the
# last event the notification service has looked at.
notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("notifier", sa.String(256), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    # Unique: the same notification (notifier, build, event) is never queued twice.
    sa.Column("key", sa.String(512), nullable=False, unique=True),
    sa.Column("payload_json", sa.Text, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # pending / sent / failed
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    sa.Column("last_error", sa.Text, nullable=False, default=""),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("sent_at", sa.Float, nullable=True),
    sa.Index("notifications_due", "state", "next_attempt_at"),
)

notifier_state = sa.Table(
    "notifier_state",
    metadata,
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("last_event_id", sa.Integer, nullable=False),
)


def _v2_notifications(conn: sa.Connection) -> None:
    metadata.create_all(conn, tables=[notifications, notifier_state])


# Version 3: scheduler state. The changes a scheduler accepted and has not built yet (stored
# with the change, deleted with the buildset built from them), and per scheduler whether it is
# enabled and when a timed scheduler last ran.
scheduler_changes = sa.Table(
    "scheduler_changes",
    metadata,
    sa.Column("scheduler", sa.String(256), primary_key=True),
    sa.Column("change_id", sa.Integer, sa.ForeignKey("changes.id"), primary_key=True),
    sa.Column("gathering", sa.String(600), nullable=False, default=""),
    sa.Column("important", sa.Boolean, nullable=False),
    sa.Column("classified_at", sa.Float, nullable=False),
)

scheduler_state = sa.Table(
    "scheduler_state",
    metadata,
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("enabled", sa.Boolean, nullable=False, default=True),
    sa.Column("last_run", sa.Float, nullable=True),
)


def _v3_scheduler_state(conn: sa.Connection) -> None:
    metadata.create_all(conn, tables=[scheduler_changes, scheduler_state])


# Version 4: build requests absorbed by another request's build (collapseRequests): the request
# completed SKIPPED and which request absorbed it. A table of its own, so the migration only adds.
buildrequest_collapses = sa.Table(
    "buildrequest_collapses",
    metadata,
    sa.Column("request_id", sa.Integer, sa.ForeignKey("buildrequests.id"), primary_key=True),
    sa.Column("absorbed_by", sa.Integer, sa.ForeignKey("buildrequests.id"), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
)


def _v4_collapses(conn: sa.Connection) -> None:
    metadata.create_all(conn, tables=[buildrequest_collapses])


# Version 5: what each change source (GitPoller) has seen: its branch heads, as JSON, written in
# the same transaction as the changes it submits, so nothing is missed or submitted twice.
change_source_state = sa.Table(
    "change_source_state",
    metadata,
    sa.Column("name", sa.String(512), primary_key=True),
    sa.Column("state_json", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)


def _v5_change_sources(conn: sa.Connection) -> None:
    metadata.create_all(conn, tables=[change_source_state])


# Version 6: build artifacts (the bytes live under the data directory; the row records them).
artifacts = sa.Table(
    "artifacts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("build_id", sa.Integer, sa.ForeignKey("builds.id"), nullable=False),
    sa.Column("step_id", sa.Integer, sa.ForeignKey("steps.id"), nullable=False),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.UniqueConstraint("build_id", "name", name="artifacts_build_name"),
)


def _v6_artifacts(conn: sa.Connection) -> None:
    metadata.create_all(conn, tables=[artifacts])


# Version 7: what each Dependent scheduler did with its upstream's buildsets, so each successful
# upstream buildset gets exactly one downstream buildset, also across a coordinator crash.
# `since`: every upstream buildset with an id up to it is resolved (built, or not to be built);
# rows of dependent_buildsets at or below it are pruned. downstream_buildset_id NULL: skipped
# (the Dependent was disabled).
dependent_state = sa.Table(
    "dependent_state",
    metadata,
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("since", sa.Integer, nullable=False),
)

dependent_buildsets = sa.Table(
    "dependent_buildsets",
    metadata,
    sa.Column("scheduler", sa.String(256), primary_key=True),
    sa.Column("upstream_buildset_id", sa.Integer, sa.ForeignKey("buildsets.id"), primary_key=True),
    sa.Column("downstream_buildset_id", sa.Integer, sa.ForeignKey("buildsets.id"), nullable=True),
    sa.Column("at", sa.Float, nullable=False),
)


def _v7_dependents(conn: sa.Connection) -> None:
    metadata.create_all(conn, tables=[dependent_state, dependent_buildsets])


# Version 8: test results as data — every test case a Test step read from a JUnit report, with
# the revision its build tested (test history, flaky and slowest tests). Deleted with its build.
test_cases = sa.Table(
    "test_cases",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("build_id", sa.Integer, sa.ForeignKey("builds.id"), nullable=False, index=True),
    sa.Column("step_id", sa.Integer, sa.ForeignKey("steps.id"), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("classname", sa.Text, nullable=False),
    sa.Column("outcome", sa.String(8), nullable=False),
    sa.Column("duration", sa.Float, nullable=True),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("revision", sa.String(256), nullable=False),
)


def _v8_test_cases(conn: sa.Connection) -> None:
    metadata.create_all(conn, tables=[test_cases])


# Version 9: API tokens and the audit log.
# API tokens (coordinator/domain/auth/tokens.py): only the SHA-256 of a token is stored.
api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("digest", sa.String(64), nullable=False, unique=True),
    sa.Column("user", sa.String(256), nullable=False),
    sa.Column("groups_json", sa.Text, nullable=False, default="[]"),
    sa.Column("description", sa.String(256), nullable=False, default=""),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=True),
    sa.Column("revoked_at", sa.Float, nullable=True),
    sa.Column("created_by", sa.String(256), nullable=False, default=""),
    sa.Column("last4", sa.String(8), nullable=False, default=""),
)

# The audit log (coordinator/domain/auth/audit.py): control actions, who, when, from where.
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("user", sa.String(256), nullable=False, default=""),
    sa.Column("via", sa.String(32), nullable=False, default=""),
    sa.Column("source", sa.String(256), nullable=False, default=""),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("target", sa.String(512), nullable=False, default=""),
    sa.Column("outcome", sa.String(64), nullable=False),
    sa.Column("detail", sa.String(512), nullable=False, default=""),
    sa.Index("ix_audit_log_user", "user"),
)


def _v9_security(conn: sa.Connection) -> None:
    metadata.create_all(conn, tables=[api_tokens, audit_log])


# Version 10: operators' holds on workers (`gantry worker pause|drain`), kept across restarts.
worker_holds = sa.Table(
    "worker_holds",
    metadata,
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),  # "paused" or "draining"
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
)


def _v10_worker_holds(conn: sa.Connection) -> None:
    metadata.create_all(conn, tables=[worker_holds])


# Version 11: the running steps' command journals (coordinator/domain/builds/journal.py): one
# row per action a step finished (command, file primitive, trigger), what a build resumed after
# a coordinator restart replays. Deleted with its build.
step_journal = sa.Table(
    "step_journal",
    metadata,
    sa.Column("build_id", sa.Integer, sa.ForeignKey("builds.id"), primary_key=True),
    sa.Column("step_number", sa.Integer, primary_key=True),
    sa.Column("idx", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("command_id", sa.String(128), nullable=False),
    sa.Column("rc", sa.Integer, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("log_name", sa.String(256), nullable=False),
    sa.Column("first_chunk", sa.Integer, nullable=False),
    sa.Column("end_chunk", sa.Integer, nullable=False),
    sa.Column("data_json", sa.Text, nullable=False),
)


def _v11_step_journal(conn: sa.Connection) -> None:
    metadata.create_all(conn, tables=[step_journal])


# Version 12: per-line log times. Each log chunk row holds when its bytes were read from the
# command's pipe: "off,ms,off,ms..." (offsets within the chunk, unix ms; one pair per chunk
# mostly). A column on the chunk rows, not a side table: it rides the batched chunk inserts and
# the range reads that already fetch the rows. Older rows keep NULL (shown without times).
def _v12_log_times(conn: sa.Connection) -> None:
    # A database created at this version got the column from version 1's create_all (the
    # table's definition carries it); only older ones need it added.
    if "marks" not in {c["name"] for c in sa.inspect(conn).get_columns("logchunks")}:
        conn.execute(sa.text("ALTER TABLE logchunks ADD COLUMN marks TEXT"))


# Version 13: the branches each build built (those of its buildset's source stamps), so a builder
# page's branch filter is an index seek on (builder, branch) read newest first, instead of a scan
# of the builder's history matching the stamps' JSON (the whole history when the branch has no
# builds). Branches longer than BRANCH_INDEXED are not listed: a filter on one reads the JSON.
BRANCH_INDEXED = 256
build_branches = sa.Table(
    "build_branches",
    metadata,
    sa.Column("builder", sa.String(256), primary_key=True),
    sa.Column("branch", sa.String(BRANCH_INDEXED), primary_key=True),
    sa.Column("build_id", sa.Integer, sa.ForeignKey("builds.id"), primary_key=True),
    sa.Index("build_branches_branch", "branch", "build_id"),  # `list_builds` of every builder
)


def branches_of(stamps_json: str) -> list[str]:
    """The distinct branches of a buildset's stamps (as stored) that get a build_branches row."""
    found = {str(s.get("branch") or "") for s in json.loads(stamps_json)}
    return sorted(b for b in found if b and len(b) <= BRANCH_INDEXED)


def _v13_build_branches(conn: sa.Connection) -> None:
    metadata.create_all(conn, tables=[build_branches])
    conn.execute(build_branches.delete())  # filled afresh: the migration may run again safely
    last = 0
    while True:  # the existing builds, a batch at a time (memory stays bounded on a long history)
        rows = conn.execute(
            sa.select(builds.c.id, builds.c.builder, buildsets.c.sourcestamps_json)
            .join(buildsets, buildsets.c.id == builds.c.buildset_id)
            .where(builds.c.id > last).order_by(builds.c.id).limit(2000)
        ).all()
        if not rows:
            return
        values = [{"builder": r.builder, "branch": b, "build_id": r.id}
                  for r in rows for b in branches_of(r.sourcestamps_json)]
        if values:
            conn.execute(build_branches.insert(), values)
        last = rows[-1].id


# Version 14: how far retention pruned the events table (`Retention(eventHorizon=...)`): a status
# stream resuming from an id at or below `pruned_through` is told its events are gone.
event_retention = sa.Table(
    "event_retention",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),  # always 1: one row
    sa.Column("pruned_through", sa.Integer, nullable=False),
)


def _v14_event_retention(conn: sa.Connection) -> None:
    metadata.create_all(conn, tables=[event_retention])


# Versioned migrations, applied in order. Never edit a released one: append a new function.
MIGRATIONS: list[tuple[int, Callable[[sa.Connection], None]]] = [
    (1, _v1_initial),
    (2, _v2_notifications),
    (3, _v3_scheduler_state),
    (4, _v4_collapses),
    (5, _v5_change_sources),
    (6, _v6_artifacts),
    (7, _v7_dependents),
    (8, _v8_test_cases),
    (9, _v9_security),
    (10, _v10_worker_holds),
    (11, _v11_step_journal),
    (12, _v12_log_times),
    (13, _v13_build_branches),
    (14, _v14_event_retention),
]
LATEST = MIGRATIONS[-1][0]


class SchemaTooNew(Exception):
    pass


def migrate(conn: sa.Connection) -> tuple[int, int]:
    """Bring the schema to the latest version; returns (version before, version after)."""
    schema_version.create(conn, checkfirst=True)
    current = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar() or 0
    if current > LATEST:
        raise SchemaTooNew(
            f"the database has schema version {current}, newer than this Gantry ({LATEST}); "
            "upgrade Gantry"
        )
    for version, step in MIGRATIONS:
        if version > current:
            step(conn)
    if current < LATEST:
        # One row: the version the schema is at (all in the caller's transaction).
        conn.execute(schema_version.delete())
        conn.execute(schema_version.insert().values(version=LATEST))
    return current, LATEST
