"""Pure decisions of a notifier: is a message needed for this result, and who gets it.

Buildbot's semantics (``reporters.generators.build.BuildStatusGenerator`` / the old
``MailNotifier.isMessageNeeded``), given the build's result and the result of the previous
complete build of the same builder (RETRY builds are skipped when looking back, as Buildbot's
``getPreviousBuild`` does; CANCELLED ones too: cancelled work, such as a build superseded by a
newer change, says nothing about the tree, so it is never a failure nor a "change"):

=========== ==================================================================
mode        a message when
=========== ==================================================================
all         always
failing     the build is FAILURE
passing     the build is SUCCESS
warnings    the build is WARNINGS
exception   the build is EXCEPTION
cancelled   the build is CANCELLED
problem     the build is FAILURE and the previous one was not (or there was none
            - Buildbot: "failed after success"; a first build that fails is a problem)
change      the result differs from the previous build's (never on the first build, never
            for a CANCELLED build)
=========== ==================================================================
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

from coordinator.domain.results import Result

MODES = ("all", "failing", "passing", "problem", "change", "warnings", "exception", "cancelled")
DEFAULT_MODE = ("failing", "passing", "warnings")

_SIMPLE = {
    "failing": Result.FAILURE,
    "passing": Result.SUCCESS,
    "warnings": Result.WARNINGS,
    "exception": Result.EXCEPTION,
    "cancelled": Result.CANCELLED,
}

Lookup = Callable[[str], str | None] | str | None


def normalize_mode(mode: str | Iterable[str]) -> tuple[str, ...]:
    """``"all"`` or ``("failing", "problem")`` -> a tuple; unknown names are kept (validated)."""
    return (mode,) if isinstance(mode, str) else tuple(mode)


def bad_modes(mode: Sequence[str]) -> list[str]:
    return [m for m in mode if m not in MODES]


def is_message_needed(mode: Sequence[str], result: Result, previous: Result | None) -> bool:
    for m in mode:
        if m == "all":
            return True
        if m in _SIMPLE and result == _SIMPLE[m]:
            return True
        if m == "problem" and result == Result.FAILURE and previous != Result.FAILURE:
            return True
        if m == "change" and previous is not None and result != previous and result != Result.CANCELLED:
            return True
    return False


_ADDRESS = re.compile(r"<([^<>@\s]+@[^<>\s]+)>")
_BARE = re.compile(r"^[^<>@\s]+@[^<>@\s]+\.[^<>@\s]+$")


def author_address(author: str, lookup: Lookup = None) -> str | None:
    """The mail address of a change's author, or None.

    A callable ``lookup`` decides alone (it gets the author string as stored). Otherwise
    ``"Jane <jane@x.org>"`` and ``"jane@x.org"`` give that address, and a plain user name with a
    domain ``lookup`` (``"jane"`` + ``"example.org"``) gives ``jane@example.org``.
    """
    author = author.strip()
    if not author:
        return None
    if callable(lookup):
        found = lookup(author)
        return found or None
    m = _ADDRESS.search(author)
    if m:
        return m.group(1)
    if _BARE.match(author):
        return author
    if isinstance(lookup, str) and lookup:
        user = author.split()[0] if " " in author else author
        return f"{user}@{lookup.lstrip('@')}"
    return None


def recipients(
    authors: Iterable[str],
    extra: Iterable[str] = (),
    send_to_interested_users: bool = True,
    lookup: Lookup = None,
) -> list[str]:
    """extraRecipients, then (if sendToInterestedUsers) the authors' addresses; no duplicates,
    in first-seen order (compared case-insensitively)."""
    out: list[str] = []
    seen: set[str] = set()

    def add(addr: str | None) -> None:
        if addr and addr.lower() not in seen:
            seen.add(addr.lower())
            out.append(addr)

    for addr in extra:
        add(addr)
    if send_to_interested_users:
        for author in authors:
            add(author_address(author, lookup))
    return out
