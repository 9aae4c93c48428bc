"""Buildbot's ``util.OldBuildCanceller``, ``util.FailingBuildsetCanceller`` and
``util.SourceStampFilter`` as Gantry's cancellers.

Buildbot's ``filters`` is a list of ``(builders, SourceStampFilter)`` (plus the builders to
cancel, for the failing-buildset one); Gantry's canceller has one branch filter for its
builders, so each filter becomes one canceller. A filter Gantry cannot express (on project,
repository or codebase, a regex, a function) drops its builders from the canceller with a note:
cancelling less than Buildbot, never more.
"""

from __future__ import annotations

from typing import Any

from coordinator.config.buildbot.adapt import different
from coordinator.config.buildbot.log import SAME, UNSUPPORTED, Call, native, note, note_at
from coordinator.config.buildbot.util import default_branch
from coordinator.domain.location import caller_location
from coordinator.domain.scheduling import cancellers as _c

_UNSET = object()


class SourceStampFilter:
    """Buildbot's util.SourceStampFilter: only ``branch_eq`` carries over (Gantry's branches=)."""

    def __init__(self, branch_eq: Any = _UNSET, **others: Any) -> None:
        self.defined_at = caller_location()
        self.others = sorted(others)
        self.branches: Any = None
        if branch_eq is not _UNSET:
            value = default_branch("util.SourceStampFilter", branch_eq)
            self.branches = [value] if isinstance(value, str) else list(value)


def _filters(what: str, filters: Any, width: int) -> list[tuple[Any, ...]] | None:
    if not isinstance(filters, list) or not all(isinstance(f, tuple) and len(f) == width for f in filters):
        shape = "(builders, SourceStampFilter)" if width == 2 else "(builders, builders_to_cancel, SourceStampFilter)"
        note(UNSUPPORTED, f"{what}(filters={filters!r}): give a list of {shape} tuples")
        return None
    kept = []
    for f in filters:
        ss = f[-1]
        if not isinstance(ss, SourceStampFilter):
            note(UNSUPPORTED, f"{what}: a filter must end with util.SourceStampFilter(...), not {ss!r} "
                              f"(builders {f[0]!r} are not watched)")
        elif ss.others:
            note_at(UNSUPPORTED, f"util.SourceStampFilter({', '.join(ss.others)}=...): Gantry's cancellers "
                                 f"filter on the branch only (branch_eq); this filter of {what} is "
                                 f"dropped (builders {f[0]!r} are not watched for it)", ss.defined_at)
        else:
            kept.append(f)
    return kept


def _names(name: str, n: int) -> list[str]:
    return [name] + [f"{name}-{i}" for i in range(2, n + 1)]


def _built(what: str, cls: Any, name: str, kwargs_list: list[dict[str, Any]]) -> Any:
    if len(kwargs_list) > 1:
        different(f"{what}({name!r}) with {len(kwargs_list)} filters -> {len(kwargs_list)} cancellers "
                  f"{', '.join(_names(name, len(kwargs_list)))} (Gantry's has one branch filter)")
    else:
        note(SAME, f"{what} -> {cls.__name__}")
    out = []
    for n, kw in zip(_names(name, len(kwargs_list)), kwargs_list, strict=True):
        obj = cls(n, **kw)
        obj.defined_at = caller_location()
        out.append(native(obj, Call(cls.__name__, (n,), kw)))
    # One canceller stands in c['services'] as itself; several as a list the master flattens.
    return out[0] if len(out) == 1 else out


def OldBuildCanceller(name: Any, filters: Any = None, branch_key: Any = None) -> Any:  # noqa: N802
    """Buildbot's util.OldBuildCanceller, as Gantry OldBuildCancellers (the master takes them
    out of c['services'])."""
    if branch_key is not None:
        note(UNSUPPORTED, "util.OldBuildCanceller(branch_key=...): Gantry's branch_key takes the branch "
                          "name, not a source stamp; write it natively (Gerrit's patch sets are grouped "
                          "by default, as in Buildbot)")
    kept = _filters("util.OldBuildCanceller", filters, 2) or []
    kws = [{"builders": _builders(f[0]), "branches": f[1].branches} for f in kept]
    return _built("util.OldBuildCanceller", _c.OldBuildCanceller, name, kws)


def FailingBuildsetCanceller(name: Any, filters: Any = None) -> Any:  # noqa: N802
    """Buildbot's util.FailingBuildsetCanceller, as Gantry FailingBuildsetCancellers."""
    kept = _filters("util.FailingBuildsetCanceller", filters, 3) or []
    kws = [{"builders": _builders(f[0]), "cancel": None if f[1] is None else _builders(f[1]),
            "branches": f[2].branches} for f in kept]
    return _built("util.FailingBuildsetCanceller", _c.FailingBuildsetCanceller, name, kws)


def _builders(value: Any) -> Any:
    return [value] if isinstance(value, str) else value
