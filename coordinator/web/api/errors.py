"""Errors of the HTTP API in one table: a domain error takes its gRPC status code (the same table
the gRPC API uses), and each gRPC code one HTTP status (grpc-gateway's mapping)."""

from __future__ import annotations

import grpc

from coordinator.api.errors import status_for
from coordinator.domain.errors import GantryError

HTTP_FOR: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.INTERNAL: 500,
}


class HttpError(Exception):
    """An expected error of an HTTP request, with its status and a message a person can act on."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = HTTP_FOR.get(code, 500)

    @classmethod
    def of(cls, exc: GantryError) -> HttpError:
        return cls(status_for(exc), str(exc))

    def body(self) -> dict[str, str]:
        return {"error": str(self), "code": self.code.name}


def invalid(message: str) -> HttpError:
    return HttpError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> HttpError:
    return HttpError(grpc.StatusCode.NOT_FOUND, message)
