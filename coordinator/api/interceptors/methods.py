"""Every gRPC method the coordinator serves -> the action it needs and where its builder is.

An explicit table, so a new RPC is a decision: tests/security/test_authz_table.py lists every
method of every service descriptor and fails for one missing here (and the interceptor refuses
an unlisted method rather than guess)."""

from __future__ import annotations

from dataclasses import dataclass

from coordinator.domain.auth import actions as a


@dataclass(frozen=True)
class MethodRule:
    action: str
    # Request fields naming the builder(s) the call is about (a string or a repeated string);
    # empty: the call is not about one builder (or is about all of them).
    builder_fields: tuple[str, ...] = ()
    # Recorded in the audit log when its action is an audited one (a listing is not a change).
    audited: bool = True


def _rule(action: str, *fields: str, audited: bool = True) -> MethodRule:
    return MethodRule(action, fields, audited)


C = "/gantry.v1.ControlService/"
METHODS: dict[str, MethodRule] = {
    "/gantry.v1.ChangeService/SubmitChanges": _rule(a.SUBMIT),
    C + "ForceBuild": _rule(a.FORCE, "builder"),
    C + "StopBuild": _rule(a.STOP, "builder"),
    C + "RebuildBuild": _rule(a.REBUILD, "builder"),
    C + "CancelBuildRequest": _rule(a.CANCEL),
    C + "SetSchedulerEnabled": _rule(a.SCHEDULER),
    C + "ListBuilders": _rule(a.READ),
    C + "GetBuilder": _rule(a.READ, "name"),
    C + "ListBuilds": _rule(a.READ, "builder"),
    C + "GetBuild": _rule(a.READ, "builder"),
    C + "ListWorkers": _rule(a.READ),
    C + "ListChanges": _rule(a.READ),
    C + "GetChange": _rule(a.READ),
    C + "ListNotifications": _rule(a.READ),
    C + "ListSchedulers": _rule(a.READ),
    C + "ListPendingRequests": _rule(a.READ, "builder"),
    C + "ListBuildRequests": _rule(a.READ, "builder"),
    C + "ListArtifacts": _rule(a.READ, "builder"),
    C + "DownloadArtifact": _rule(a.READ, "builder"),
    C + "ListTests": _rule(a.READ, "builder"),
    "/gantry.v1.TryService/SubmitTry": _rule(a.TRY, "builders"),
    "/gantry.v1.AdminService/PauseWorker": _rule(a.WORKER_ADMIN),
    "/gantry.v1.AdminService/DrainWorker": _rule(a.WORKER_ADMIN),
    "/gantry.v1.AdminService/ResumeWorker": _rule(a.WORKER_ADMIN),
    "/gantry.v1.AdminService/Reconfig": _rule(a.RECONFIG),
    # Deleting what retention says has expired is an administrator's act, like a reconfig.
    "/gantry.v1.AdminService/RunJanitor": _rule(a.RECONFIG),
    "/gantry.v1.LogService/ReadLog": _rule(a.READ, "builder"),
    "/gantry.v1.LogService/FollowLog": _rule(a.READ, "builder"),
    "/gantry.v1.StatusService/Subscribe": _rule(a.READ, "builders"),
    "/gantry.v1.StatusService/WatchBuild": _rule(a.READ, "builder"),
    "/gantry.v1.TokenService/CreateToken": _rule(a.TOKEN_ADMIN),
    "/gantry.v1.TokenService/ListTokens": _rule(a.TOKEN_ADMIN, audited=False),
    "/gantry.v1.TokenService/RevokeToken": _rule(a.TOKEN_ADMIN),
    "/gantry.v1.AuditService/ListAudit": _rule(a.AUDIT),
    # The worker proves itself in its Hello (name + secret, or its certificate).
    "/gantry.v1.WorkerService/Connect": _rule(a.WORKER),
    # Load balancers and `gantry up` probe health without credentials.
    "/grpc.health.v1.Health/Check": _rule(a.PUBLIC),
    "/grpc.health.v1.Health/Watch": _rule(a.PUBLIC),
    "/grpc.health.v1.Health/List": _rule(a.PUBLIC),
    # Reflection describes the API: as sensitive as reading it.
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": _rule(a.READ),
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo": _rule(a.READ),
}
