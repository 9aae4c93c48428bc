"""Codebases (Buildbot's multi-repository builds): a scheduler declares the codebases its builds
use, each with default repository/branch/revision; a buildset then carries one source stamp per
codebase - the stamps a change (or a force form, or a Trigger step) gives, and the defaults for
the others.

``codebases={"app": {"repository": "https://...", "branch": "main"}, "lib": {...}}`` or a list of
names (no defaults). ``None``: the scheduler does not use codebases (a single stamp, as before).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from coordinator.domain.model import Change, SourceStamp

FIELDS = ("repository", "branch", "revision", "project")

Codebases = dict[str, SourceStamp]


def parse_codebases(codebases: Any, errors: list[str]) -> Codebases | None:
    """The declared codebases as default stamps (keyed and ordered by name); problems go to
    `errors` (reported by checkconfig)."""
    if codebases is None:
        return None
    if isinstance(codebases, str) or not isinstance(codebases, Mapping | list | tuple):
        errors.append(f"codebases must be a dict of codebase name -> defaults, or a list of names, not {codebases!r}")
        return None
    items = codebases.items() if isinstance(codebases, Mapping) else ((name, {}) for name in codebases)
    out: Codebases = {}
    for name, defaults in items:
        if not isinstance(name, str):
            errors.append(f"codebase names must be strings, not {name!r}")
            continue
        if not isinstance(defaults, Mapping):
            errors.append(f"codebase {name!r}: defaults must be a dict such as {{'repository': ..., 'branch': ...}}")
            continue
        unknown = sorted(set(defaults) - set(FIELDS))
        if unknown:
            errors.append(f"codebase {name!r}: unknown key(s) {', '.join(unknown)} (use {', '.join(FIELDS)})")
        raw = {k: "" if defaults.get(k) is None else defaults.get(k) for k in FIELDS}
        values = {k: v for k, v in raw.items() if isinstance(v, str)}
        if len(values) != len(raw):
            errors.append(f"codebase {name!r}: {', '.join(FIELDS)} must be strings")
            continue
        out[name] = SourceStamp(codebase=name, **values)
    if not out:
        errors.append("codebases must name at least one codebase")
    return dict(sorted(out.items()))


def merge(default: SourceStamp, given: SourceStamp) -> SourceStamp:
    """`given` over `default`: what `given` sets wins, the rest is the default's - except the
    default revision, which belongs to the default branch and repository: it is dropped
    (latest) when `given` names another branch or repository without a revision."""
    out = replace(default, **{k: getattr(given, k) for k in FIELDS if getattr(given, k)})
    moved = (given.branch and given.branch != default.branch) or (
        given.repository and given.repository != default.repository
    )
    if moved and not given.revision:
        out = replace(out, revision="")
    return out


def with_defaults(codebases: Codebases | None, given: Iterable[SourceStamp]) -> list[SourceStamp]:
    """Buildbot's addBuildsetForSourceStampsWithDefaults: one stamp per declared codebase (the
    given one over the defaults), then the given stamps of codebases the scheduler does not declare."""
    given = list(given)
    if codebases is None:
        return given
    by_codebase = {s.codebase: s for s in given}
    out = [merge(default, by_codebase[name]) if name in by_codebase else default for name, default in codebases.items()]
    return out + [s for s in given if s.codebase not in codebases]


def stamps_for_changes(codebases: Codebases | None, changes: Sequence[Change]) -> list[SourceStamp]:
    """Buildbot's addBuildsetForChanges: each declared codebase takes the stamp of its latest
    change, or its defaults when no change touched it."""
    if codebases is None:
        return [_stamp(changes[-1])] if changes else []
    last: dict[str, Change] = {}
    for c in changes:
        last[c.codebase] = c  # changes arrive in id order
    return [_stamp(last[name]) if name in last else default for name, default in codebases.items()]


def _stamp(c: Change) -> SourceStamp:
    return SourceStamp(
        repository=c.repository, branch=c.branch, revision=c.revision, project=c.project, codebase=c.codebase
    )
