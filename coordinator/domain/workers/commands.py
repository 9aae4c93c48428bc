"""Messages between the coordinator's domain and a worker agent, independent of the wire."""

from __future__ import annotations

from dataclasses import dataclass, field

STDOUT, STDERR, HEADER = 1, 2, 3


@dataclass(frozen=True)
class CommandSpec:
    """One process to run on a worker (the worker stays a small set of primitives)."""

    command_id: str
    argv: list[str] = field(default_factory=list)
    shell_command: str = ""
    builder_dir: str = ""
    workdir: str = "build"
    env: dict[str, str] = field(default_factory=dict)
    timeout: float = 0.0
    max_time: float = 0.0
    # (name, value) of the secrets the command was given: the worker hides each value in what
    # it sends back as "<secret NAME>".
    redactions: tuple[tuple[str, str], ...] = ()
    # Seconds the command may wait for a lost worker to come back and re-attach (0: none).
    missing_timeout: float = 0.0


@dataclass(frozen=True)
class Interrupt:
    command_id: str
    reason: str


@dataclass(frozen=True)
class Ack:
    command_id: str
    seq: int
    finished: bool = False  # the command's end is stored too: the worker may forget it


@dataclass(frozen=True)
class Reattach:
    """Resume a command kept through a reconnect: resend the output after `stored_seq`."""

    command_id: str
    stored_seq: int


@dataclass(frozen=True)
class Abandon:
    """Nobody waits for this command any more: the worker kills it."""

    command_id: str
    reason: str


@dataclass(frozen=True)
class KeptCommand:
    """A command a reconnecting worker kept running (or finished) while it was away."""

    command_id: str
    last_seq: int
    finished: bool


@dataclass(frozen=True)
class Output:
    command_id: str
    seq: int
    channel: int
    data: bytes
    # When the worker read the bytes: flattened (offset in data, unix ms) pairs; () from an
    # agent that does not say (the log then records when the coordinator received them).
    marks: tuple[int, ...] = ()


@dataclass(frozen=True)
class Finished:
    command_id: str
    rc: int
    reason: str = ""
    last_seq: int = 0


class WorkerLost(Exception):
    """The worker went away while a command ran and did not come back in time (or came back
    without it); the build must end RETRY."""


# -- file primitives (see FileCommand in worker.proto)
MKDIR, RMDIR, STAT, GLOB, UPLOAD, UPLOAD_DIR, DOWNLOAD = (
    "mkdir", "rmdir", "stat", "glob", "upload", "upload_dir", "download",
)


@dataclass(frozen=True)
class FileCommand:
    """One file primitive on the worker; `path` is relative to builder_dir unless absolute."""

    request_id: str
    op: str
    builder_dir: str
    path: str
    max_size: int = 0
    mode: int = 0
    offset: int = 0  # UPLOAD/UPLOAD_DIR: resume after the bytes the coordinator already stored


@dataclass(frozen=True)
class FileChunk:
    """A numbered piece of a transfer (either direction); the last download one has eof+sha256."""

    request_id: str
    seq: int
    data: bytes
    eof: bool = False
    sha256: str = ""


@dataclass(frozen=True)
class FileAck:
    request_id: str
    seq: int


@dataclass(frozen=True)
class FileCancel:
    request_id: str
    reason: str


@dataclass(frozen=True)
class FileResult:
    request_id: str
    error: str = ""
    exists: bool = False
    is_dir: bool = False
    size: int = 0
    mtime: float = 0.0
    sha256: str = ""
    last_seq: int = 0
    paths: tuple[str, ...] = ()
    too_large: bool = False


class TransferError(Exception):
    """A file primitive failed in an expected way (missing file, size limit, damaged data): the
    step fails with this message."""
