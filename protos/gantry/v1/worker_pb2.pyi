from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WorkerMessage(_message.Message):
    __slots__ = ("hello", "heartbeat", "output", "finished", "file_data", "file_result", "file_ack", "draining")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    FILE_DATA_FIELD_NUMBER: _ClassVar[int]
    FILE_RESULT_FIELD_NUMBER: _ClassVar[int]
    FILE_ACK_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    heartbeat: Heartbeat
    output: OutputChunk
    finished: CommandFinished
    file_data: FileData
    file_result: FileResult
    file_ack: FileAck
    draining: Draining
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., output: _Optional[_Union[OutputChunk, _Mapping]] = ..., finished: _Optional[_Union[CommandFinished, _Mapping]] = ..., file_data: _Optional[_Union[FileData, _Mapping]] = ..., file_result: _Optional[_Union[FileResult, _Mapping]] = ..., file_ack: _Optional[_Union[FileAck, _Mapping]] = ..., draining: _Optional[_Union[Draining, _Mapping]] = ...) -> None: ...

class CoordinatorMessage(_message.Message):
    __slots__ = ("welcome", "heartbeat", "start", "interrupt", "ack", "file_command", "file_data", "file_ack", "file_cancel", "shutdown", "reattach", "abandon")
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    INTERRUPT_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    FILE_COMMAND_FIELD_NUMBER: _ClassVar[int]
    FILE_DATA_FIELD_NUMBER: _ClassVar[int]
    FILE_ACK_FIELD_NUMBER: _ClassVar[int]
    FILE_CANCEL_FIELD_NUMBER: _ClassVar[int]
    SHUTDOWN_FIELD_NUMBER: _ClassVar[int]
    REATTACH_FIELD_NUMBER: _ClassVar[int]
    ABANDON_FIELD_NUMBER: _ClassVar[int]
    welcome: Welcome
    heartbeat: Heartbeat
    start: StartCommand
    interrupt: InterruptCommand
    ack: Ack
    file_command: FileCommand
    file_data: FileData
    file_ack: FileAck
    file_cancel: FileCancel
    shutdown: Shutdown
    reattach: Reattach
    abandon: AbandonCommand
    def __init__(self, welcome: _Optional[_Union[Welcome, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., start: _Optional[_Union[StartCommand, _Mapping]] = ..., interrupt: _Optional[_Union[InterruptCommand, _Mapping]] = ..., ack: _Optional[_Union[Ack, _Mapping]] = ..., file_command: _Optional[_Union[FileCommand, _Mapping]] = ..., file_data: _Optional[_Union[FileData, _Mapping]] = ..., file_ack: _Optional[_Union[FileAck, _Mapping]] = ..., file_cancel: _Optional[_Union[FileCancel, _Mapping]] = ..., shutdown: _Optional[_Union[Shutdown, _Mapping]] = ..., reattach: _Optional[_Union[Reattach, _Mapping]] = ..., abandon: _Optional[_Union[AbandonCommand, _Mapping]] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("name", "secret", "os", "arch", "labels", "max_builds", "version", "running_command_ids", "commands")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    OS_FIELD_NUMBER: _ClassVar[int]
    ARCH_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    MAX_BUILDS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    RUNNING_COMMAND_IDS_FIELD_NUMBER: _ClassVar[int]
    COMMANDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    secret: str
    os: str
    arch: str
    labels: _containers.RepeatedScalarFieldContainer[str]
    max_builds: int
    version: str
    running_command_ids: _containers.RepeatedScalarFieldContainer[str]
    commands: _containers.RepeatedCompositeFieldContainer[CommandState]
    def __init__(self, name: _Optional[str] = ..., secret: _Optional[str] = ..., os: _Optional[str] = ..., arch: _Optional[str] = ..., labels: _Optional[_Iterable[str]] = ..., max_builds: _Optional[int] = ..., version: _Optional[str] = ..., running_command_ids: _Optional[_Iterable[str]] = ..., commands: _Optional[_Iterable[_Union[CommandState, _Mapping]]] = ...) -> None: ...

class CommandState(_message.Message):
    __slots__ = ("command_id", "last_seq", "finished")
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    command_id: str
    last_seq: int
    finished: bool
    def __init__(self, command_id: _Optional[str] = ..., last_seq: _Optional[int] = ..., finished: _Optional[bool] = ...) -> None: ...

class Reattach(_message.Message):
    __slots__ = ("command_id", "stored_seq")
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    STORED_SEQ_FIELD_NUMBER: _ClassVar[int]
    command_id: str
    stored_seq: int
    def __init__(self, command_id: _Optional[str] = ..., stored_seq: _Optional[int] = ...) -> None: ...

class AbandonCommand(_message.Message):
    __slots__ = ("command_id", "reason")
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    command_id: str
    reason: str
    def __init__(self, command_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ("heartbeat_interval", "window", "version")
    HEARTBEAT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    heartbeat_interval: int
    window: int
    version: str
    def __init__(self, heartbeat_interval: _Optional[int] = ..., window: _Optional[int] = ..., version: _Optional[str] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("sent_at",)
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    sent_at: float
    def __init__(self, sent_at: _Optional[float] = ...) -> None: ...

class StartCommand(_message.Message):
    __slots__ = ("command_id", "argv", "shell_command", "builder_dir", "workdir", "env", "timeout", "max_time", "missing_timeout", "redactions")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    ARGV_FIELD_NUMBER: _ClassVar[int]
    SHELL_COMMAND_FIELD_NUMBER: _ClassVar[int]
    BUILDER_DIR_FIELD_NUMBER: _ClassVar[int]
    WORKDIR_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    MAX_TIME_FIELD_NUMBER: _ClassVar[int]
    MISSING_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    REDACTIONS_FIELD_NUMBER: _ClassVar[int]
    command_id: str
    argv: _containers.RepeatedScalarFieldContainer[str]
    shell_command: str
    builder_dir: str
    workdir: str
    env: _containers.ScalarMap[str, str]
    timeout: float
    max_time: float
    missing_timeout: float
    redactions: _containers.RepeatedCompositeFieldContainer[Redaction]
    def __init__(self, command_id: _Optional[str] = ..., argv: _Optional[_Iterable[str]] = ..., shell_command: _Optional[str] = ..., builder_dir: _Optional[str] = ..., workdir: _Optional[str] = ..., env: _Optional[_Mapping[str, str]] = ..., timeout: _Optional[float] = ..., max_time: _Optional[float] = ..., missing_timeout: _Optional[float] = ..., redactions: _Optional[_Iterable[_Union[Redaction, _Mapping]]] = ...) -> None: ...

class Redaction(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class InterruptCommand(_message.Message):
    __slots__ = ("command_id", "reason")
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    command_id: str
    reason: str
    def __init__(self, command_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class OutputChunk(_message.Message):
    __slots__ = ("command_id", "seq", "channel", "data", "time_marks")
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    TIME_MARKS_FIELD_NUMBER: _ClassVar[int]
    command_id: str
    seq: int
    channel: int
    data: bytes
    time_marks: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, command_id: _Optional[str] = ..., seq: _Optional[int] = ..., channel: _Optional[int] = ..., data: _Optional[bytes] = ..., time_marks: _Optional[_Iterable[int]] = ...) -> None: ...

class CommandFinished(_message.Message):
    __slots__ = ("command_id", "rc", "reason", "last_seq")
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    RC_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    command_id: str
    rc: int
    reason: str
    last_seq: int
    def __init__(self, command_id: _Optional[str] = ..., rc: _Optional[int] = ..., reason: _Optional[str] = ..., last_seq: _Optional[int] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("command_id", "seq", "finished")
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    command_id: str
    seq: int
    finished: bool
    def __init__(self, command_id: _Optional[str] = ..., seq: _Optional[int] = ..., finished: _Optional[bool] = ...) -> None: ...

class FileCommand(_message.Message):
    __slots__ = ("request_id", "op", "builder_dir", "path", "max_size", "mode", "offset")
    class Op(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        OP_UNSPECIFIED: _ClassVar[FileCommand.Op]
        MKDIR: _ClassVar[FileCommand.Op]
        RMDIR: _ClassVar[FileCommand.Op]
        STAT: _ClassVar[FileCommand.Op]
        GLOB: _ClassVar[FileCommand.Op]
        UPLOAD: _ClassVar[FileCommand.Op]
        UPLOAD_DIR: _ClassVar[FileCommand.Op]
        DOWNLOAD: _ClassVar[FileCommand.Op]
    OP_UNSPECIFIED: FileCommand.Op
    MKDIR: FileCommand.Op
    RMDIR: FileCommand.Op
    STAT: FileCommand.Op
    GLOB: FileCommand.Op
    UPLOAD: FileCommand.Op
    UPLOAD_DIR: FileCommand.Op
    DOWNLOAD: FileCommand.Op
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    BUILDER_DIR_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    MAX_SIZE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    op: FileCommand.Op
    builder_dir: str
    path: str
    max_size: int
    mode: int
    offset: int
    def __init__(self, request_id: _Optional[str] = ..., op: _Optional[_Union[FileCommand.Op, str]] = ..., builder_dir: _Optional[str] = ..., path: _Optional[str] = ..., max_size: _Optional[int] = ..., mode: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class FileData(_message.Message):
    __slots__ = ("request_id", "seq", "data", "eof", "sha256")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    EOF_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    seq: int
    data: bytes
    eof: bool
    sha256: str
    def __init__(self, request_id: _Optional[str] = ..., seq: _Optional[int] = ..., data: _Optional[bytes] = ..., eof: _Optional[bool] = ..., sha256: _Optional[str] = ...) -> None: ...

class FileAck(_message.Message):
    __slots__ = ("request_id", "seq")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    seq: int
    def __init__(self, request_id: _Optional[str] = ..., seq: _Optional[int] = ...) -> None: ...

class FileCancel(_message.Message):
    __slots__ = ("request_id", "reason")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    reason: str
    def __init__(self, request_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class FileResult(_message.Message):
    __slots__ = ("request_id", "error", "exists", "is_dir", "size", "mtime", "sha256", "last_seq", "paths", "too_large")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    EXISTS_FIELD_NUMBER: _ClassVar[int]
    IS_DIR_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    MTIME_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    PATHS_FIELD_NUMBER: _ClassVar[int]
    TOO_LARGE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    error: str
    exists: bool
    is_dir: bool
    size: int
    mtime: float
    sha256: str
    last_seq: int
    paths: _containers.RepeatedScalarFieldContainer[str]
    too_large: bool
    def __init__(self, request_id: _Optional[str] = ..., error: _Optional[str] = ..., exists: _Optional[bool] = ..., is_dir: _Optional[bool] = ..., size: _Optional[int] = ..., mtime: _Optional[float] = ..., sha256: _Optional[str] = ..., last_seq: _Optional[int] = ..., paths: _Optional[_Iterable[str]] = ..., too_large: _Optional[bool] = ...) -> None: ...

class Draining(_message.Message):
    __slots__ = ("reason", "stopping")
    REASON_FIELD_NUMBER: _ClassVar[int]
    STOPPING_FIELD_NUMBER: _ClassVar[int]
    reason: str
    stopping: bool
    def __init__(self, reason: _Optional[str] = ..., stopping: _Optional[bool] = ...) -> None: ...

class Shutdown(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...
