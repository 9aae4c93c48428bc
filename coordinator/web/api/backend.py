"""What the HTTP side calls: the gRPC servicers themselves, so validation and errors are the
gRPC API's. A servicer takes (request, context); no unary method here reads the context."""

from __future__ import annotations

import copy
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from coordinator.api.servicers import ChangeServicer, ControlServicer, LogServicer, StatusServicer
from coordinator.domain.errors import GantryError
from coordinator.web.api.errors import HttpError
from coordinator.web.api.routes import SERVICES
from coordinator.web.api.transcode import to_json
from protos.gantry.v1 import control_pb2

CACHED_BUILDS = 5000


@dataclass
class Backend:
    control: ControlServicer
    status: StatusServicer
    logs: LogServicer
    changes: ChangeServicer
    # The JSON of finished builds as listed (they never change once finished): protobuf's
    # pure-Python JSON conversion is most of a waterfall's server time. Bounded, oldest out.
    _listed: OrderedDict[tuple[int, bool], dict[str, Any]] = field(default_factory=OrderedDict)

    def servicer(self, service: str) -> Any:
        return {"ControlService": self.control, "LogService": self.logs, "StatusService": self.status,
                "ChangeService": self.changes}[service]

    async def call(self, service: str, rpc: str, request: Message) -> Message:
        method = getattr(self.servicer(service), rpc)
        try:
            result: Message = await method(request, None)
        except GantryError as exc:
            raise HttpError.of(exc) from None
        return result

    async def get(self, rpc: str, **fields: Any) -> dict[str, Any]:
        """A ControlService call as JSON (what the UI's pages read: the same as their JSON twin)."""
        desc = SERVICES["ControlService"].methods_by_name[rpc]
        request = GetMessageClass(desc.input_type)(**fields)
        reply = await self.call("ControlService", rpc, request)
        if isinstance(reply, control_pb2.ListBuildsResponse):
            return {"builds": [self._listed_build(b, bool(fields.get("with_steps"))) for b in reply.builds]}
        return to_json(reply)

    def _listed_build(self, build: control_pb2.Build, with_steps: bool) -> dict[str, Any]:
        if not build.complete:
            return to_json(build)
        key = (build.id, with_steps)
        doc = self._listed.get(key)
        if doc is None:
            doc = self._listed[key] = to_json(build)
            if len(self._listed) > CACHED_BUILDS:
                self._listed.popitem(last=False)
        return copy.deepcopy(doc)  # the views add their own keys

    @property
    def last_event_id(self) -> int:
        """The newest published event id: a page rendered after reading it and streaming from it
        misses nothing."""
        return int(self.status.feed.bus.last_id)
