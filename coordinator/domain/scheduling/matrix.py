"""Build matrices: one builder definition with axes runs one build per combination.

``Builder("test", ..., matrix=Matrix(python=["3.11", "3.12"], os=["linux", "arm"],
exclude=[{"python": "3.11", "os": "arm"}], labels=["os"]), fail_fast=True)`` stands for one
builder per combination, named ``test@3.12,linux`` (the values in axis order): each has the
combination as properties (``python``, ``os``), and the values of the `labels` axes added to its
worker_labels, so only a worker that advertised that label runs it. Whoever asks for ``test`` (a
scheduler, a force, a Trigger) gets one buildset with one request per combination; `fail_fast`
stops the rest of that buildset when one combination fails (a FailingBuildsetCanceller rule).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from coordinator.domain.builds.builders import Builder, safe_dirname
from coordinator.domain.scheduling.cancellers import Canceller, FailingBuildsetCanceller

T = TypeVar("T")
VALUE_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


class Matrix:
    """Axes (keyword arguments: name -> list of values), `exclude` (partial combinations to
    leave out), `include` (whole combinations to add) and `labels` (the axes whose value a
    worker must advertise as a label)."""

    def __init__(
        self, *, exclude: Sequence[Mapping[str, Any]] = (), include: Sequence[Mapping[str, Any]] = (),
        labels: Sequence[str] = (), **axes: Sequence[Any],
    ) -> None:
        self.axes: dict[str, Any] = {k: [str(v) for v in vs] if _seq(vs) else vs for k, vs in axes.items()}
        self.exclude = [dict(e) for e in exclude] if _seq(exclude) else exclude
        self.include = [dict(i) for i in include] if _seq(include) else include
        self.labels = [labels] if isinstance(labels, str) else list(labels) if _seq(labels) else labels

    @property
    def errors(self) -> list[str]:
        out: list[str] = []
        if not self.axes:
            out.append("a Matrix needs at least one axis, e.g. Matrix(python=['3.11', '3.12'])")
        for name, values in self.axes.items():
            if not isinstance(values, list) or not values:
                out.append(f"axis {name!r} must be a non-empty list of values, not {values!r}")
            elif any(not v or set(v) - VALUE_CHARS for v in values):
                out.append(f"axis {name!r}: values must use letters, digits, '_', '-', '.' (they name the "
                           f"combination's builder), not {values!r}")
            elif len(set(values)) != len(values):
                out.append(f"axis {name!r} lists a value twice: {values!r}")
        for what, entries in (("exclude", self.exclude), ("include", self.include)):
            if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
                out.append(f"{what} must be a list of dicts such as {{'python': '3.11'}}, not {entries!r}")
                continue
            for e in entries:
                unknown = sorted(set(e) - set(self.axes))
                if unknown:
                    out.append(f"{what} {e!r} names unknown axes {unknown} (axes: {', '.join(self.axes)})")
                elif what == "include" and set(e) != set(self.axes):
                    out.append(f"include {e!r} must give a value for every axis ({', '.join(self.axes)})")
                elif what == "include" and any(set(str(v)) - VALUE_CHARS or not str(v) for v in e.values()):
                    out.append(f"include {e!r}: values must use letters, digits, '_', '-', '.'")
        if not isinstance(self.labels, list) or any(a not in self.axes for a in self.labels):
            out.append(f"labels must list axes of the matrix ({', '.join(self.axes)}), not {self.labels!r}")
        if not out and not self.combinations():
            out.append("the matrix has no combination left after exclude")
        return out

    def combinations(self) -> list[dict[str, str]]:
        """Every combination, in axis order: the product minus `exclude`, then `include`."""
        names = list(self.axes)
        out = [
            dict(zip(names, values, strict=True)) for values in itertools.product(*self.axes.values())
        ]
        out = [c for c in out if not any(all(c.get(k) == str(v) for k, v in e.items()) for e in self.exclude)]
        for extra in self.include:
            combo = {k: str(extra[k]) for k in names}
            if combo not in out:
                out.append(combo)
        return out

    def name_of(self, base: str, combo: Mapping[str, str]) -> str:
        return f"{base}@{','.join(combo[k] for k in self.axes)}"


def expand(builder: Builder) -> list[Builder]:
    """The builders of `builder`'s combinations (itself when it has no matrix)."""
    matrix = builder.matrix
    if not isinstance(matrix, Matrix):
        return [builder]
    out = []
    for combo in matrix.combinations():
        name = matrix.name_of(builder.name, combo)
        labels = [*builder.worker_labels, *(combo[a] for a in matrix.labels if combo[a] not in builder.worker_labels)]
        default_dir = builder.builddir == safe_dirname(builder.name)
        one = dataclasses.replace(
            builder, name=name, properties={**builder.properties, **combo}, worker_labels=labels,
            builddir=safe_dirname(name) if default_dir else f"{builder.builddir}/{safe_dirname(name)}",
            matrix=None, fail_fast=False,
        )
        one.defined_at = builder.defined_at
        out.append(one)
    return out


class Matrices:
    """The configuration's builders with their matrices expanded, and the way back from a
    matrix builder's name to its combinations."""

    def __init__(self, builders: Iterable[Builder]) -> None:
        self.builders: list[Builder] = []
        self.groups: dict[str, list[str]] = {}
        self.fail_fast: list[FailingBuildsetCanceller] = []
        for b in builders:
            expanded = expand(b)
            self.builders += expanded
            if isinstance(b.matrix, Matrix):
                names = [x.name for x in expanded]
                self.groups[b.name] = names
                if b.fail_fast:
                    self.fail_fast.append(FailingBuildsetCanceller(f"{b.name}:fail_fast", builders=names, cancel=names))

    def rules(self, rules: Iterable[Canceller]) -> list[Canceller]:
        """The cancellers with matrix builders' names replaced by their combinations' (copies),
        then one rule per fail_fast matrix."""
        out: list[Canceller] = []
        for rule in rules:
            one = copy.copy(rule)
            one.builders = self.names(rule.builders)
            if isinstance(one, FailingBuildsetCanceller) and one.cancel is not None:
                one.cancel = self.names(one.cancel)
            out.append(one)
        return out + list(self.fail_fast)

    def filtering(self, objects: Iterable[T]) -> list[T]:
        """Objects with a `builders` filter (notifiers), copied with matrix builders' names
        replaced by their combinations' (the events name the combinations)."""
        out = []
        for obj in objects:
            builders = getattr(obj, "builders", None)
            if isinstance(builders, list) and any(b in self.groups for b in builders):
                obj = copy.copy(obj)
                obj.builders = self.names(builders)  # type: ignore[attr-defined]
            out.append(obj)
        return out

    def names(self, builders: Iterable[str]) -> list[str]:
        """`builders` with each matrix builder replaced by its combinations (order kept)."""
        out: list[str] = []
        for name in builders:
            for one in self.groups.get(name, [name]):
                if one not in out:
                    out.append(one)
        return out


def _seq(value: object) -> bool:
    return isinstance(value, list | tuple)
