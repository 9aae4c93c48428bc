"""ForceScheduler with Buildbot's typed parameters and codebases.

``ForceScheduler("force", ["b"], properties=[IntParameter("jobs", default=4),
ChoiceStringParameter("flavour", choices=["debug", "release"])], codebases=[...])``: a forced
build's properties are checked against the parameters (defaults applied, `required` and `regex`
enforced, values converted to their type); a bad value is refused with a message naming the
parameter and the reason.

``codebases=[CodebaseParameter("app", branch=ChoiceStringParameter("branch", choices=[...]),
revision=StringParameter("revision", regex=...), project=None), ...]`` declares each codebase's
form fields the same way (a field given as None is not on the form: the codebase's default is
used); a dict of defaults or a list of names gives plain string fields.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from coordinator.domain.changes.codebases import FIELDS, parse_codebases, with_defaults
from coordinator.domain.errors import InvalidArgument
from coordinator.domain.location import caller_location
from coordinator.domain.model import NewBuildset, PropertyValue, SourceStamp
from coordinator.domain.scheduling import schedulers


class BaseParameter:
    """One field of the force form; subclasses convert and check a value (`parse`)."""

    type = "string"

    def __init__(
        self,
        name: str,
        label: str | None = None,
        default: Any = "",
        required: bool = False,
        regex: str | None = None,
        **_ignored: Any,  # Buildbot's layout options (size, cols, tablabel, ...)
    ) -> None:
        self.defined_at = caller_location()
        self.errors: list[str] = []
        self.name = name
        self.label = label if label is not None else name
        self.default = default
        self.required = required
        self.regex = regex
        self._regex = None
        if not isinstance(name, str) or not name:
            self.errors.append(f"a parameter needs a name, not {name!r}")
        if regex is not None:
            try:
                self._regex = re.compile(regex)
            except re.error as exc:
                self.errors.append(f"parameter {name!r}: regex {regex!r} is not valid: {exc}")

    def parse(self, value: Any) -> Any:
        """The value converted to this parameter's type; ValueError(reason) if it cannot be."""
        if isinstance(value, dict | list):
            raise ValueError(f"{_show(value)} is not a string")
        return "" if value is None else str(value) if not isinstance(value, bool) else str(value).lower()

    def check(self, value: Any) -> Any:
        """parse + required + regex, as the force form does."""
        out = self.parse(value)
        if self.required and out in ("", None, []):
            raise ValueError("a value is required")
        if self._regex is not None and isinstance(out, str) and not self._regex.match(out):
            raise ValueError(f"{_show(out)} does not match {self.regex!r}")
        return out


class StringParameter(BaseParameter):
    pass


class TextParameter(StringParameter):
    type = "text"


class IntParameter(BaseParameter):
    type = "int"

    def __init__(self, name: str, label: str | None = None, default: Any = 0, **kwargs: Any) -> None:
        super().__init__(name, label, default, **kwargs)

    def parse(self, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
            return int(value)
        if isinstance(value, str) and not value.strip() and not self.required:
            return self.default
        raise ValueError(f"{_show(value)} is not an integer")


class BooleanParameter(BaseParameter):
    type = "bool"
    TRUE = ("true", "yes", "on", "1")
    FALSE = ("false", "no", "off", "0", "")

    def __init__(self, name: str, label: str | None = None, default: Any = False, **kwargs: Any) -> None:
        super().__init__(name, label, default, **kwargs)

    def parse(self, value: Any) -> Any:
        if isinstance(value, bool):
            return value
        if isinstance(value, int | str) and str(value).strip().lower() in self.TRUE + self.FALSE:
            return str(value).strip().lower() in self.TRUE
        raise ValueError(f"{_show(value)} is not a boolean (use true or false)")


class ChoiceStringParameter(BaseParameter):
    type = "choice"

    def __init__(
        self,
        name: str,
        label: str | None = None,
        default: Any = None,
        choices: Sequence[str] = (),
        multiple: bool = False,
        strict: bool = True,
        **kwargs: Any,
    ) -> None:
        self.choices = list(choices)
        self.multiple = multiple
        self.strict = strict
        if default is None:
            default = [] if multiple else (self.choices[0] if self.choices else "")
        super().__init__(name, label, default, **kwargs)
        if not self.choices:
            self.errors.append(f"parameter {name!r}: choices must list at least one value")

    def parse(self, value: Any) -> Any:
        values = value if isinstance(value, list) else [value]
        if not self.multiple and len(values) != 1:
            raise ValueError(f"{_show(value)}: only one value may be chosen")
        out = [str(v) for v in values]
        if self.strict:
            for v in out:
                if v not in self.choices:
                    raise ValueError(f"{_show(v)} is not one of {', '.join(map(repr, self.choices))}")
        return out if self.multiple else out[0]


class FixedParameter(BaseParameter):
    """A property the form cannot change (always its default)."""

    type = "fixed"

    def parse(self, value: Any) -> Any:
        if value != self.default:
            raise ValueError(f"is fixed to {_show(self.default)} and cannot be set")
        return self.default


@dataclass(frozen=True)
class ParameterInfo:
    """What a client is told about a parameter."""

    name: str
    label: str
    type: str
    default: Any
    required: bool
    regex: str
    choices: tuple[str, ...]
    multiple: bool


_DEFAULT_FIELD: Any = object()  # a CodebaseParameter field not given: a plain string field


class CodebaseParameter:
    """Buildbot's CodebaseParameter: one codebase's fields of the force form. Each of branch,
    revision, repository and project is a parameter (StringParameter when not given, any string
    parameter such as ChoiceStringParameter or FixedParameter, or None: not on the form) whose
    default is the codebase's default."""

    def __init__(
        self,
        codebase: str,
        name: str | None = None,  # Buildbot's form field name: not needed here
        label: str | None = None,
        branch: Any = _DEFAULT_FIELD,
        revision: Any = _DEFAULT_FIELD,
        repository: Any = _DEFAULT_FIELD,
        project: Any = _DEFAULT_FIELD,
        **_ignored: Any,  # patch, layout options
    ) -> None:
        self.defined_at = caller_location()
        self.errors: list[str] = []
        self.codebase = codebase
        self.label = label if label is not None else (codebase or "default codebase")
        if not isinstance(codebase, str):
            self.errors.append(f"CodebaseParameter: codebase must be a string, not {codebase!r}")
        self.fields: dict[str, BaseParameter] = {}
        given = {"branch": branch, "revision": revision, "repository": repository, "project": project}
        for role, field in given.items():
            if field is _DEFAULT_FIELD:
                field = StringParameter(role, label=role.capitalize())
            if field is None or field is False:
                continue
            if not isinstance(field, BaseParameter) or isinstance(field, IntParameter | BooleanParameter):
                self.errors.append(f"codebase {codebase!r}: {role} must be a string parameter "
                                   f"(StringParameter, ChoiceStringParameter, FixedParameter) or None, not {field!r}")
                continue
            if getattr(field, "multiple", False):
                self.errors.append(f"codebase {codebase!r}: {role} takes one value, not multiple choices")
            if not isinstance(field.default, str):
                self.errors.append(f"codebase {codebase!r}: the default {role} must be a string, not {field.default!r}")
            self.errors.extend(field.errors)
            self.fields[role] = field

    def defaults(self) -> dict[str, str]:
        return {role: p.default for role, p in self.fields.items() if isinstance(p.default, str)}

    def check(self, given: SourceStamp, default: SourceStamp) -> None:
        """InvalidArgument naming the codebase and field when a value of `given` (empty: the
        default) is not one its form accepts."""
        where = f'codebase "{self.codebase}"' if self.codebase else "the default codebase"
        for role in FIELDS:
            value = getattr(given, role)
            field = self.fields.get(role)
            if field is None:
                if value and value != getattr(default, role):
                    raise InvalidArgument(f"{where} {role}: is not on the force form and cannot be set")
                continue
            try:
                field.check(value or getattr(default, role))
            except ValueError as exc:
                raise InvalidArgument(f"{where} {role}: {exc}") from None


@dataclass(frozen=True)
class CodebaseForm:
    """What a client is told about one codebase's fields (`name` of each: the stamp field)."""

    codebase: str
    label: str
    fields: tuple[ParameterInfo, ...]


def _plain_form(default: SourceStamp) -> CodebaseParameter:
    """The form of a codebase declared by its defaults only: a string field per stamp field."""
    def field(role: str) -> StringParameter:
        return StringParameter(role, label=role.capitalize(), default=getattr(default, role))

    return CodebaseParameter(default.codebase, branch=field("branch"), revision=field("revision"),
                             repository=field("repository"), project=field("project"))


def _info(p: BaseParameter, name: str | None = None) -> ParameterInfo:
    return ParameterInfo(
        name or p.name, p.label, p.type, p.default, p.required, p.regex or "",
        tuple(getattr(p, "choices", ())), bool(getattr(p, "multiple", False)),
    )


def _show(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


class ForceScheduler(schedulers.Scheduler):
    """Buildbot's ForceScheduler: `properties` is a list of parameters (a dict still gives fixed
    scheduler properties, as before); `codebases` the codebases a forced build carries."""

    def __init__(
        self,
        name: str,
        builderNames: Sequence[str] = (),
        properties: Sequence[BaseParameter] | dict[str, Any] | None = None,
        codebases: Any = None,
        priority: int = 0,
        *,
        builders: Sequence[str] = (),
    ) -> None:
        fixed = properties if isinstance(properties, dict) else None
        super().__init__(name, list(builderNames) or list(builders), fixed, priority)
        self.defined_at = caller_location()
        self.errors: list[str] = []
        self.parameters: list[BaseParameter] = []
        if properties is not None and fixed is None:
            for p in properties:
                if not isinstance(p, BaseParameter):
                    self.errors.append(f"properties must be parameters such as IntParameter(...), not {p!r}")
                    continue
                self.errors.extend(p.errors)
                if any(q.name == p.name for q in self.parameters):
                    self.errors.append(f"parameter {p.name!r} is defined twice")
                self.parameters.append(p)
                if not isinstance(p, FixedParameter) and p.default not in ("", None, []):
                    try:
                        p.check(p.default)
                    except ValueError as exc:
                        self.errors.append(f"parameter {p.name!r}: default {exc}")
        self.codebase_forms: list[CodebaseParameter] = []
        if isinstance(codebases, list | tuple) and any(isinstance(c, CodebaseParameter) for c in codebases):
            forms = [c if isinstance(c, CodebaseParameter) else CodebaseParameter(c) for c in codebases]
            for form in forms:
                self.errors.extend(form.errors)
            codebases = {f.codebase: f.defaults() for f in forms if isinstance(f.codebase, str)}
            if len(codebases) != len(forms):
                self.errors.append("codebases: a codebase is declared twice")
        else:
            forms = None
        self.codebases = parse_codebases(codebases, self.errors)
        if self.codebases is not None:
            # Without CodebaseParameter: a string field per stamp field, defaulting to the declared value.
            self.codebase_forms = forms or [_plain_form(d) for d in self.codebases.values()]

    def parameter_infos(self) -> list[ParameterInfo]:
        return [_info(p) for p in self.parameters]

    def codebase_infos(self) -> list[CodebaseForm]:
        return [CodebaseForm(f.codebase, f.label, tuple(_info(p, role) for role, p in f.fields.items()))
                for f in self.codebase_forms]

    def collect_properties(self, given: Sequence[PropertyValue]) -> list[PropertyValue]:
        """The forced build's properties: each parameter's value (given or default) checked and
        converted; InvalidArgument naming the parameter otherwise."""
        if not self.parameters:
            return list(given)
        values = {p.name: p.value for p in given}
        known = {p.name for p in self.parameters}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InvalidArgument(
                f"unknown parameter {unknown[0]!r} for ForceScheduler {self.name!r}; "
                f"its parameters: {', '.join(self.describe_parameters())}"
            )
        out = []
        for p in self.parameters:
            raw = values.get(p.name, p.default)
            try:
                value = p.check(raw)
            except ValueError as exc:
                raise InvalidArgument(f'parameter "{p.name}": {exc}') from None
            out.append(PropertyValue(p.name, value, "Force Build Form"))
        return out

    def describe_parameters(self) -> list[str]:
        return [f"{p.name} ({p.type}{', required' if p.required else ''})" for p in self.parameters]

    def sourcestamps(self, top: SourceStamp, per_codebase: Sequence[SourceStamp]) -> list[SourceStamp]:
        """The forced build's stamps: `top` (the request's branch/revision/...) for the default
        codebase, `per_codebase` for named ones, the declared defaults for the rest."""
        given = list(per_codebase)
        seen: set[str] = set()
        for s in given:
            if s.codebase in seen:
                raise InvalidArgument(f"codebase {s.codebase!r} is given twice")
            seen.add(s.codebase)
            if self.codebases is not None and s.codebase not in self.codebases:
                raise InvalidArgument(
                    f"ForceScheduler {self.name!r} has no codebase {s.codebase!r} "
                    f"(its codebases: {', '.join(repr(c) for c in self.codebases)})"
                )
        has_top = any((top.repository, top.branch, top.revision, top.project))
        if "" not in seen and (has_top or self.codebases is None or "" in self.codebases):
            if self.codebases is not None and "" not in self.codebases:
                raise InvalidArgument(
                    f"ForceScheduler {self.name!r} builds the codebases "
                    f"{', '.join(repr(c) for c in self.codebases)}: give branch/revision per codebase"
                )
            given.insert(0, top)
        if self.codebases is not None:
            by_codebase = {st.codebase: st for st in given}
            for form in self.codebase_forms:  # also those not given: a required field needs a value
                default = self.codebases[form.codebase]
                form.check(by_codebase.get(form.codebase, SourceStamp(codebase=form.codebase)), default)
        return with_defaults(self.codebases, given)

    def force_buildset(
        self, builder: str, *, reason: str, owner: str, top: SourceStamp,
        per_codebase: Sequence[SourceStamp], properties: Sequence[PropertyValue],
    ) -> NewBuildset:
        bs = self.buildset_for(
            builder, reason=reason, owner=owner, branch=top.branch, revision=top.revision,
            repository=top.repository, project=top.project, properties=self.collect_properties(properties),
        )
        bs.sourcestamps = self.sourcestamps(top, per_codebase)
        return bs

    def buildset_for(
        self,
        builder: str,
        *,
        reason: str,
        owner: str,
        branch: str,
        revision: str,
        repository: str,
        project: str,
        properties: list[PropertyValue],
    ) -> NewBuildset:
        who = f" by '{owner}'" if owner else ""
        text = f"A build was forced{who}" + (f": {reason}" if reason else "")
        props = [PropertyValue(p.name, p.value, "Force Build Form") for p in properties]
        if owner:
            props.append(PropertyValue("owner", owner, "Force Build Form"))
        props.append(PropertyValue("reason", reason, "Force Build Form"))
        return NewBuildset(
            reason=text,
            scheduler=self.name,
            builders=[builder],
            sourcestamps=[SourceStamp(repository=repository, branch=branch, revision=revision, project=project)],
            properties=props + self.scheduler_properties(),
            priority=self.priority,
        )
