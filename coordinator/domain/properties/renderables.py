"""Renderables: values in a configuration that are computed per build, with Buildbot's semantics.

``Property("name", default=...)``, ``Interpolate("%(prop:branch)s")``, ``Transform(fn, ...)``,
``Secret("name")`` and ``@renderer`` functions are rendered at run time against the build (its properties and
source stamps) by :func:`render`, which walks strings, lists, tuples and dicts recursively.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from coordinator.domain.errors import SecretNotFound
from coordinator.domain.model import SourceStamp


class RenderContext(Protocol):
    """What rendering reads from a build; the build runner provides it."""

    def get_property(self, name: str, default: Any = None) -> Any: ...

    def has_property(self, name: str) -> bool: ...

    @property
    def sourcestamps(self) -> Sequence[SourceStamp]: ...


class Renderable:
    """Base of every value rendered at run time."""

    def get_rendering_for(self, ctx: RenderContext) -> Any:
        raise NotImplementedError


def render(value: Any, ctx: RenderContext) -> Any:
    """`value` with every renderable in it replaced by its rendering for this build."""
    if isinstance(value, Renderable):
        return render(value.get_rendering_for(ctx), ctx)
    if isinstance(value, str | bytes | int | float | bool) or value is None:
        return value
    if isinstance(value, list):
        return [render(v, ctx) for v in value]
    if isinstance(value, tuple):
        return tuple(render(v, ctx) for v in value)
    if isinstance(value, dict):
        return {render(k, ctx): render(v, ctx) for k, v in value.items()}
    return value


class Property(Renderable):
    """A build property's value; `default` when it is missing (or false, with
    `defaultWhenFalse`, as in Buildbot)."""

    def __init__(self, name: str, default: Any = None, defaultWhenFalse: bool = True) -> None:
        self.name = name
        self.default = default
        self.defaultWhenFalse = defaultWhenFalse

    def get_rendering_for(self, ctx: RenderContext) -> Any:
        if not ctx.has_property(self.name):
            return self.default
        value = ctx.get_property(self.name)
        if self.defaultWhenFalse and not value:
            return self.default
        return value

    def __repr__(self) -> str:
        return f"Property({self.name!r})"


class _Renderer(Renderable):
    def __init__(self, fn: Callable[[RenderContext], Any]) -> None:
        self.fn = fn

    def get_rendering_for(self, ctx: RenderContext) -> Any:
        return self.fn(ctx)


def renderer(fn: Callable[[RenderContext], Any]) -> Renderable:
    """Decorator (Buildbot's ``@util.renderer``): a function of the build's properties object
    (``props.getProperty("x")``, ``props.get_property("x")``) rendered at run time."""
    return _Renderer(fn)


class Transform(Renderable):
    """``fn(*args, **kwargs)`` with the arguments rendered first."""

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        if not callable(fn):
            raise TypeError(f"Transform needs a function, not {fn!r}")
        self.fn = fn
        self.args = args
        self.kwargs = kwargs

    def get_rendering_for(self, ctx: RenderContext) -> Any:
        return self.fn(*render(list(self.args), ctx), **render(dict(self.kwargs), ctx))


class Secret(Renderable):
    """Buildbot's ``Secret("name")`` (``util.Secret``): the value of a secret from the configured
    ``secretsProviders``, rendered at run time. The value is used in commands and env but hidden
    (as ``<secret name>``) from logs, state strings and stored properties. A secret no provider
    has ends the step with "secret NAME not found in any provider"."""

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"Secret needs the secret's name, not {name!r}")
        self.name = name

    def get_rendering_for(self, ctx: RenderContext) -> Any:
        lookup = getattr(ctx, "get_secret", None)
        if lookup is None:
            raise SecretNotFound(self.name)
        return lookup(self.name)

    def __repr__(self) -> str:
        return f"Secret({self.name!r})"


_MISSING = object()


class Interpolate(Renderable):
    """Buildbot's ``Interpolate``: %-formatting whose keys read the build.

    Keys: ``prop:NAME``, ``src:CODEBASE:ATTR`` (empty CODEBASE: the default source stamp),
    ``kw:NAME`` (keyword arguments of Interpolate), ``worker:KEY`` (the build's worker: ``name``,
    ``os``, ``arch``, ``version``, ``labels``, or a property of its configuration),
    ``secret:NAME`` (a secret, as ``Secret``); each may end with an operator:
    ``:-REPL`` (REPL when missing), ``:~REPL`` (REPL when missing or false), ``:+REPL`` (REPL
    when set, else empty), ``:?|IF_SET|IF_MISSING`` and ``:#?|IF_TRUE|IF_FALSE``. A missing
    value without an operator renders as the empty string. Positional arguments (renderables)
    fill plain ``%s`` instead."""

    def __init__(self, fmtstring: str, *args: Any, **kwargs: Any) -> None:
        if args and kwargs:
            raise ValueError("Interpolate takes positional or keyword arguments, not both")
        self.fmtstring = fmtstring
        self.args = args
        self.kwargs = kwargs

    def get_rendering_for(self, ctx: RenderContext) -> str:
        if self.args:
            return self.fmtstring % tuple(render(list(self.args), ctx))
        return self.fmtstring % _Keys(ctx, render(dict(self.kwargs), ctx))

    def __repr__(self) -> str:
        return f"Interpolate({self.fmtstring!r})"


class _Keys(Mapping[str, Any]):
    """The mapping %-formatting reads: each key is parsed and looked up in the build."""

    def __init__(self, ctx: RenderContext, kwargs: dict[str, Any]) -> None:
        self.ctx = ctx
        self.kwargs = kwargs

    def __getitem__(self, key: str) -> Any:
        kind, _, rest = key.partition(":")
        if kind == "prop":
            name, op = _split_op(rest)
            value = self.ctx.get_property(name) if self.ctx.has_property(name) else _MISSING
        elif kind == "src":
            codebase, _, rest = rest.partition(":")
            attr, op = _split_op(rest)
            value = _source_attr(self.ctx.sourcestamps, codebase, attr)
        elif kind == "kw":
            name, op = _split_op(rest)
            value = self.kwargs.get(name, _MISSING)
        elif kind == "worker":
            name, op = _split_op(rest)
            info = getattr(self.ctx, "worker_info", None) or {}
            value = info.get(name, _MISSING)
            value = _MISSING if value in ("", None) else value
        elif kind == "secret":
            name, op = _split_op(rest)
            value = Secret(name).get_rendering_for(self.ctx)
        else:
            raise KeyError(f"Interpolate: unknown key {key!r} (use prop:, src:, kw:, worker: or secret:)")
        return render(_apply(value, op), self.ctx)

    def __iter__(self) -> Any:
        return iter(())

    def __len__(self) -> int:
        return 0


def _split_op(text: str) -> tuple[str, str]:
    name, sep, op = text.partition(":")
    return name, op if sep else ""


def _source_attr(stamps: Sequence[SourceStamp], codebase: str, attr: str) -> Any:
    for ss in stamps:
        if ss.codebase == codebase:
            value = getattr(ss, attr, _MISSING)
            return _MISSING if value in ("", None) else value
    return _MISSING


def _apply(value: Any, op: str) -> Any:
    missing = value is _MISSING
    if not op:
        return "" if missing or value is None else value
    code, arg = op[0], op[1:]
    if code == "-":
        return arg if missing else value
    if code == "~":
        return arg if missing or not value else value
    if code == "+":
        return "" if missing else arg
    if op.startswith(("?", "#?")):
        truth = (not missing) if code == "?" else (not missing and bool(value))
        body = op[1:] if code == "?" else op[2:]
        parts = body[1:].split(body[:1]) if body else []
        if len(parts) != 2:
            raise KeyError(f"Interpolate: {op!r} needs the form ?|IF_SET|IF_MISSING")
        return parts[0] if truth else parts[1]
    raise KeyError(f"Interpolate: unknown operator {op!r}")
