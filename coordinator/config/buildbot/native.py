"""Write a configuration the compatibility layer built as Gantry-native Python source.

Every object the layer built remembers its Gantry call (log.Call); this prints those calls, so
the result uses only ``from coordinator.config import *``. A value the layer did not build and
that has no literal form (a function, a custom step class) cannot be written: it is named in
``NotWritable`` so the user can copy it across by hand.
"""

from __future__ import annotations

import enum
from typing import Any

from coordinator.config.buildbot.log import Call, native_call
from coordinator.domain.auth import actions
from coordinator.domain.builds.locks import LockAccess
from coordinator.domain.changes.svnpoller import split_file_alwaystrunk, split_file_branches

INDENT = "    "
# Functions `from coordinator.config import *` names: written by their name.
NAMED: dict[Any, str] = {
    split_file_alwaystrunk: "split_file_alwaystrunk", split_file_branches: "split_file_branches",
    actions.ALL: "actions.ALL",
}
WIDTH = 79  # calls longer than this are split one argument a line (read at 80 columns)


class NotWritable(Exception):
    def __init__(self, values: list[str]) -> None:
        self.values = values
        super().__init__(", ".join(values))


def native_source(config: Call, origin: str) -> str:
    """The whole native configuration file for the MasterConfig `config`."""
    problems: list[str] = []
    body = _value(config, 0, problems)
    if problems:
        raise NotWritable(sorted(set(problems)))
    return (
        f'"""Gantry-native configuration of {origin},\nwritten by `gantry checkconfig --from-buildbot`."""\n\n'
        "from coordinator.config import *\n\n"
        f"config = {body}\n"
    )


def _value(value: Any, depth: int, problems: list[str]) -> str:
    call = native_call(value) if not isinstance(value, Call) else value
    if call is not None:
        parts = [_value(a, depth + 1, problems) for a in call.args]
        parts += [f"{k}={_value(v, depth + 1, problems)}" for k, v in call.kwargs.items()]
        return _wrap(f"{call.name}(", parts, ")", depth)
    if isinstance(value, LockAccess):
        return f"{_value(value.lock, depth, problems)}.access({value.mode!r})"
    named = next((name for f, name in NAMED.items() if value is f), None)
    if named is not None:
        return named
    if isinstance(value, enum.Enum):
        return value.name
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return repr(value)
    if isinstance(value, list | tuple):
        items = [_value(v, depth + 1, problems) for v in value]
        text = _wrap("[", items, "]", depth)
        return text if isinstance(value, list) else "(" + text[1:-1] + ("," if len(items) == 1 else "") + ")"
    if isinstance(value, dict):
        items = [f"{_value(k, depth + 1, problems)}: {_value(v, depth + 1, problems)}" for k, v in value.items()]
        return _wrap("{", items, "}", depth)
    problems.append(repr(value))
    return "None"


def _wrap(opening: str, parts: list[str], closing: str, depth: int) -> str:
    flat = opening + ", ".join(parts) + closing
    if not parts or (len(flat) + len(INDENT) * depth <= WIDTH and "\n" not in flat):
        return flat
    inner = INDENT * (depth + 1)
    return opening + "\n" + "".join(f"{inner}{p},\n" for p in parts) + INDENT * depth + closing
