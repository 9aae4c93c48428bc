"""The actions a rule allows. A gRPC method or HTTP endpoint maps to exactly one of them
(coordinator/api/interceptors/methods.py); PUBLIC and WORKER are decided elsewhere (health
checks need no identity; a worker proves itself with its own name and secret)."""

from __future__ import annotations

READ = "read"  # builders, builds, logs, events, workers, changes, schedulers, artifacts
SUBMIT = "submit"  # submit source changes (VCS hooks)
FORCE = "force"
TRY = "try"  # send a try job (a patch built on the workers)
STOP = "stop"
REBUILD = "rebuild"
CANCEL = "cancel"  # cancel a pending build request
SCHEDULER = "scheduler"  # enable/disable a scheduler
RECONFIG = "reconfig"
WORKER_ADMIN = "worker"  # pause/drain a worker
TOKEN_ADMIN = "token"  # create/list/revoke other users' API tokens
AUDIT = "audit"  # read the audit log

ALL = (READ, SUBMIT, FORCE, TRY, STOP, REBUILD, CANCEL, SCHEDULER, RECONFIG, WORKER_ADMIN, TOKEN_ADMIN, AUDIT)
# Not rule-governed: the health service, and the worker stream (its own authentication).
PUBLIC = "public"
WORKER = "worker-stream"
