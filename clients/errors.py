"""The clients' error hierarchy: every failed call becomes a `GantryError` with a human message.

gRPC status codes are mapped in one table (`_BY_CODE`) so the CLI can print one clear line
(`gantry: error: ...`) instead of a traceback, and library users can catch what they expect.
"""

from __future__ import annotations

import grpc


class GantryError(Exception):
    """A Gantry operation failed; `str(err)` is a message fit for a human."""

    default_message = "the request failed"

    def __init__(self, code_name: str, message: str) -> None:
        super().__init__(message)
        self.code_name = code_name
        self.message = message

    def __str__(self) -> str:
        return self.message


class CoordinatorUnavailable(GantryError):
    """The coordinator cannot be reached (not running, wrong address, network down)."""


class InvalidArgument(GantryError):
    """The request was rejected as malformed (bad field value, unknown kind...)."""

    default_message = "invalid request"


class NotFound(GantryError):
    """The builder, build, step, log, change... does not exist."""

    default_message = "not found"


class AlreadyExists(GantryError):
    default_message = "already exists"


class FailedPrecondition(GantryError):
    """The request is valid but not possible now (e.g. no ForceScheduler for that builder)."""

    default_message = "not possible in the current state"


class PermissionDenied(GantryError):
    """Authentication or authorisation failed."""

    default_message = "permission denied"


class ResourceExhausted(GantryError):
    default_message = "the coordinator is overloaded or a limit was exceeded"


class Timeout(GantryError):
    default_message = "the coordinator did not answer in time"


class Cancelled(GantryError):
    default_message = "the request was cancelled"


class Internal(GantryError):
    """The coordinator failed; its log has the details."""

    default_message = "the coordinator failed (see its log)"


class LocalError(GantryError):
    """Something failed on this machine (starting a process, writing a file...)."""

    def __init__(self, message: str) -> None:
        super().__init__("LOCAL", message)


_BY_CODE: dict[grpc.StatusCode, type[GantryError]] = {
    grpc.StatusCode.UNAVAILABLE: CoordinatorUnavailable,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.ABORTED: FailedPrecondition,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: PermissionDenied,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.DEADLINE_EXCEEDED: Timeout,
    grpc.StatusCode.CANCELLED: Cancelled,
    grpc.StatusCode.INTERNAL: Internal,
    grpc.StatusCode.UNKNOWN: Internal,
    grpc.StatusCode.DATA_LOSS: Internal,
    grpc.StatusCode.UNIMPLEMENTED: Internal,
}


def unreachable_message(address: str) -> str:
    return (
        f"cannot reach the coordinator at {address} "
        "(is it running? set --coordinator or GANTRY_COORDINATOR)"
    )


# Handshake failures grpc reports in its UNAVAILABLE details, and what they mean to a person.
_TLS_HINTS = (
    ("WRONG_VERSION_NUMBER", "the coordinator at {a} does not speak TLS (drop --tls-ca, or start it with --tls-cert)"),
    ("Socket closed", ""),  # also a plain client against a TLS server; decided below
    ("not in peer certificate", "the certificate of {a} is not valid for that host name (check the address)"),
    ("Hostname Verification", "the certificate of {a} is not valid for that host name (check the address)"),
    ("certificate has expired", "the certificate of {a} has expired (renew it on the coordinator)"),
    ("CERTIFICATE_VERIFY_FAILED", "the certificate of {a} is not trusted or has expired (check --tls-ca)"),
    ("certificate verify failed", "the certificate of {a} is not trusted or has expired (check --tls-ca)"),
    ("TSI_", "TLS handshake with {a} failed (check --tls-ca and the certificates)"),
    ("Handshake failed", "TLS handshake with {a} failed (check --tls-ca and the certificates)"),
)


def tls_problem(details: str, address: str, *, tls: bool) -> str:
    """A clear sentence for a handshake failure hidden in UNAVAILABLE details ('' if none)."""
    for needle, message in _TLS_HINTS:
        if needle in details:
            if needle == "Socket closed":
                if tls:
                    continue
                return (f"the coordinator at {address} closed the connection: it may require TLS "
                        "(pass --tls-ca FILE or set GANTRY_TLS_CA)")
            return message.format(a=address)
    return ""


def from_rpc_error(err: grpc.RpcError, address: str, *, tls: bool = False) -> GantryError:
    """Translate a failed gRPC call into the matching `GantryError`."""
    code: grpc.StatusCode = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = (err.details() if hasattr(err, "details") else "") or ""
    cls = _BY_CODE.get(code, GantryError)
    if cls is CoordinatorUnavailable:
        return CoordinatorUnavailable(code.name, tls_problem(details, address, tls=tls) or unreachable_message(address))
    if cls is Timeout:
        return Timeout(code.name, f"the coordinator at {address} did not answer in time")
    if code is grpc.StatusCode.UNIMPLEMENTED:
        message = f"the coordinator at {address} does not support this request ({details})"
        return Internal(code.name, message)
    # One line only: the server's details can carry a stack trace in debug builds.
    first_line = details.strip().splitlines()[0] if details.strip() else ""
    return cls(code.name, first_line or cls.default_message)
