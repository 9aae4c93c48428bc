"""The transcoding table: which HTTP method and path call which gRPC method.

Path parameters and (for GET) the query string fill the request message's fields, as
grpc-gateway's `google.api.http` rules do; a POST's JSON body fills the rest. The same servicer
method as the gRPC API runs, so validation and errors are the same.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.descriptor import MethodDescriptor

from protos.gantry.v1 import changes_pb2, control_pb2, logs_pb2, status_pb2

SERVICES = {
    "ChangeService": changes_pb2.DESCRIPTOR.services_by_name["ChangeService"],
    "ControlService": control_pb2.DESCRIPTOR.services_by_name["ControlService"],
    "LogService": logs_pb2.DESCRIPTOR.services_by_name["LogService"],
    "StatusService": status_pb2.DESCRIPTOR.services_by_name["StatusService"],
}


@dataclass(frozen=True)
class Route:
    method: str  # GET or POST
    path: str  # aiohttp pattern, e.g. /api/v1/builders/{builder}/builds/{number}
    service: str  # key of SERVICES
    rpc: str
    summary: str

    @property
    def descriptor(self) -> MethodDescriptor:
        return SERVICES[self.service].methods_by_name[self.rpc]

    @property
    def grpc_name(self) -> str:
        """The gRPC method's full name, the key of its authorization rule."""
        return f"/{SERVICES[self.service].full_name}/{self.rpc}"


B = "/api/v1/builders/{builder}"
BUILD = B + "/builds/{number}"

ROUTES: list[Route] = [
    Route("GET", "/api/v1/builders", "ControlService", "ListBuilders", "Configured builders"),
    Route("GET", "/api/v1/builders/{name}", "ControlService", "GetBuilder", "One builder"),
    Route("GET", "/api/v1/builds", "ControlService", "ListBuilds", "Recent builds, newest first"),
    Route("GET", B + "/builds", "ControlService", "ListBuilds", "A builder's builds, newest first"),
    Route("GET", BUILD, "ControlService", "GetBuild", "One build with steps, properties, changes"),
    Route("POST", B + "/force", "ControlService", "ForceBuild", "Force a build"),
    Route("POST", BUILD + "/stop", "ControlService", "StopBuild", "Stop a running build"),
    Route("POST", BUILD + "/rebuild", "ControlService", "RebuildBuild", "Build again what a build built"),
    Route("GET", BUILD + "/artifacts", "ControlService", "ListArtifacts", "A build's artifacts"),
    Route("GET", "/api/v1/pending", "ControlService", "ListPendingRequests",
          "Unstarted build requests with why they wait"),
    Route("GET", B + "/tests", "ControlService", "ListTests",
          "A builder's test results: failing, flaky or slowest tests, or one test's runs (view, name)"),
    Route("GET", B + "/pending", "ControlService", "ListPendingRequests",
          "A builder's unstarted build requests with why they wait"),
    Route("GET", "/api/v1/buildrequests", "ControlService", "ListBuildRequests", "Build requests"),
    Route("POST", "/api/v1/buildrequests/{request_id}/cancel", "ControlService", "CancelBuildRequest",
          "Cancel an unstarted build request"),
    Route("GET", "/api/v1/workers", "ControlService", "ListWorkers", "Configured workers"),
    Route("GET", "/api/v1/changes", "ControlService", "ListChanges", "Recent changes, newest first"),
    Route("GET", "/api/v1/changes/{id}", "ControlService", "GetChange", "One change"),
    Route("POST", "/api/v1/changes", "ChangeService", "SubmitChanges",
          "Submit source changes (1..1000, atomically; idempotency_key makes a retry harmless)"),
    Route("GET", "/api/v1/notifications", "ControlService", "ListNotifications", "Notification outbox"),
    Route("GET", "/api/v1/schedulers", "ControlService", "ListSchedulers", "Schedulers"),
    Route("POST", "/api/v1/schedulers/{name}/enabled", "ControlService", "SetSchedulerEnabled",
          "Enable or disable a scheduler"),
    Route("GET", "/api/v1/builders/{builder}/builds/{build_number}/steps/{step}/logs/{log}", "LogService",
          "ReadLog", "A byte range of a log (data base64-encoded; see .../raw for the bytes)"),
]

LOG = B + "/builds/{number}/steps/{step}/logs/{log}"

# The gRPC methods served another way than JSON in, JSON out (handlers in http.py): server
# streams as Server-Sent Events, bytes as themselves. Listed so that their authorization is the
# gRPC method's too (coordinator/web/auth.py), as for the routes above.
OTHER: list[Route] = [
    Route("GET", "/api/v1/events", "StatusService", "Subscribe",
          "Status events as Server-Sent Events; resume with Last-Event-ID or `since`"),
    Route("GET", BUILD + "/watch", "StatusService", "WatchBuild",
          "One build's full state, then again after each of its events, as Server-Sent Events"),
    Route("GET", LOG + "/follow", "LogService", "FollowLog",
          "A log's text as it grows, as Server-Sent Events; resume with Last-Event-ID or `offset`"),
    Route("GET", LOG + "/raw", "LogService", "ReadLog", "A log's bytes as text; supports Range: bytes=A-B"),
    Route("GET", LOG + "/times", "LogService", "ReadLog",
          "When the bytes of a log range were produced: times = [[offset, unix_ms], ...], each the time "
          "of the bytes from its offset to the next (empty for old logs)"),
    Route("GET", BUILD + "/artifacts/{name}", "ControlService", "DownloadArtifact", "An artifact's bytes"),
]
