"""Translate one Buildbot constructor call into a Gantry one, noting how each option maps.

A :class:`Spec` says, per Buildbot keyword, what Gantry does with it: the same option under
another name (``rename``), nothing because it makes no sense here (``ignored``), or nothing
because Gantry lacks it (``unsupported``, with what to use instead).
Keywords a Spec does not name pass through unchanged (Gantry kept Buildbot's spelling).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from coordinator.config.buildbot.log import DIFFERENT, IGNORED, SAME, UNSUPPORTED, Call, Unsupported, native, note
from coordinator.domain.location import caller_location

UNEXPECTED = re.compile(r"got an unexpected keyword argument '(\w+)'")


@dataclass(frozen=True)
class Spec:
    rename: Mapping[str, str] = field(default_factory=dict)
    ignored: Mapping[str, str] = field(default_factory=dict)  # keyword -> why it is meaningless
    unsupported: Mapping[str, str] = field(default_factory=dict)  # keyword -> what to use instead
    # An unsupported keyword given one of these values asks for what Gantry does anyway
    # (verify=True, useSASL=False): accepted with a note instead.
    harmless: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)

    def merged(self, other: Spec) -> Spec:
        return Spec(
            {**self.rename, **other.rename}, {**self.ignored, **other.ignored},
            {**self.unsupported, **other.unsupported}, {**self.harmless, **other.harmless},
        )


def translate(what: str, kwargs: dict[str, Any], spec: Spec) -> dict[str, Any]:
    """The Gantry keywords for Buildbot's `kwargs`; notes every option that does not carry over
    unchanged (at the user's line)."""
    out: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key in spec.unsupported and any(value is v or value == v for v in spec.harmless.get(key, ())):
            note(IGNORED, f"{what}({key}={value!r}) is ignored: that is what Gantry does")
        elif key in spec.unsupported:
            note(UNSUPPORTED, f"{what}({key}=...): {spec.unsupported[key]}")
        elif key in spec.ignored:
            note(IGNORED, f"{what}({key}=...) is ignored: {spec.ignored[key]}")
        elif key in spec.rename:
            out[spec.rename[key]] = value
        else:
            out[key] = value
    return out


def build(what: str, cls: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
          spec: Spec = Spec(), native_name: str | None = None) -> Any:
    """``cls(*args, **translated kwargs)``, noted as a one-to-one mapping and remembered for the
    native configuration."""
    gantry_kwargs = translate(what, kwargs, spec)
    name = native_name or str(getattr(cls, "__name__", what))
    note(SAME, f"{what} -> {name}")
    while True:
        try:
            obj = cls(*args, **gantry_kwargs)
        except TypeError as exc:
            # A Buildbot option this layer does not list: report it, never a bare TypeError.
            m = UNEXPECTED.search(str(exc))
            if not m or m.group(1) not in gantry_kwargs:
                raise
            note(UNSUPPORTED, f"{what}({m.group(1)}=...): Gantry's {name} has no such option")
            del gantry_kwargs[m.group(1)]
            continue
        if hasattr(obj, "defined_at"):
            # Objects from outside this package (the notifiers) would stop at this frame.
            obj.defined_at = caller_location()
        return native(obj, Call(name, tuple(args), gantry_kwargs))


SUBCLASSING = ("Buildbot's step and component APIs differ from Gantry's: write it against Gantry's "
               "BuildStep (docs/custom_step.md) in a native configuration")


def _namespace_class(what: str, make: Callable[..., Any], doc: str) -> type:
    """A class standing for Buildbot's `what`: calling it returns `make(...)` (a Gantry object,
    not an instance of this class); subclassing it, as Buildbot configurations do for custom
    steps, is reported at the class statement."""

    def __new__(cls: type, *args: Any, **kwargs: Any) -> Any:  # noqa: N807
        if cls is not made:
            return Unsupported(f"a subclass of {what}")  # reported at its class statement
        return make(*args, **kwargs)

    def __init_subclass__(cls: type, **kwargs: Any) -> None:  # noqa: N807
        note(UNSUPPORTED, f"subclassing {what}: {SUBCLASSING}")

    name = what.rpartition(".")[2]
    made = type(name, (), {"__new__": __new__, "__init_subclass__": __init_subclass__, "__doc__": doc,
                           "__module__": __name__})
    return made


def adapter(what: str, cls: Callable[..., Any], spec: Spec = Spec()) -> Any:
    """A Buildbot-named constructor for a Gantry class."""

    def make(*args: Any, **kwargs: Any) -> Any:
        return build(what, cls, args, kwargs, spec)

    return _namespace_class(what, make, f"Buildbot's {what}, built as Gantry's {getattr(cls, '__name__', cls)}.")


def unsupported(what: str, instead: str) -> Any:
    """A Buildbot class Gantry does not have: calling it is reported at the caller's line."""

    def make(*args: Any, **kwargs: Any) -> Unsupported:
        note(UNSUPPORTED, f"{what}: {instead}")
        return Unsupported(what)

    return _namespace_class(what, make, f"Buildbot's {what}: not supported ({instead}).")


def missing(namespace: str, name: str, instead: str) -> Callable[..., Any]:
    """The module ``__getattr__`` answer for a Buildbot name this layer does not know."""
    if name.startswith("_"):
        raise AttributeError(name)
    return unsupported(f"{namespace}.{name}", instead)


def different(text: str) -> None:
    note(DIFFERENT, text)


def ignored(text: str) -> None:
    note(IGNORED, text)
