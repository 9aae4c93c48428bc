"""What the HTTP side calls: the gRPC servicers themselves, so validation and errors are the
gRPC API's. A servicer takes (request, context); no unary method here reads the context."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from coordinator.api.servicers import ControlServicer, LogServicer, StatusServicer
from coordinator.domain.errors import GantryError
from coordinator.web.api.errors import HttpError
from coordinator.web.api.routes import SERVICES
from coordinator.web.api.transcode import to_json


@dataclass
class Backend:
    control: ControlServicer
    status: StatusServicer
    logs: LogServicer

    def servicer(self, service: str) -> Any:
        return {"ControlService": self.control, "LogService": self.logs, "StatusService": self.status}[service]

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
        return to_json(await self.call("ControlService", rpc, request))

    @property
    def last_event_id(self) -> int:
        """The newest published event id: a page rendered after reading it and streaming from it
        misses nothing."""
        return int(self.status.feed.bus.last_id)
