"""Buildbot's report generators (``generators=[...]`` of a reporter), folded into the options of
Gantry's reporter: which builds (``builders``/``tags``, a mail's ``mode``) and, for the commit
status pushes, the description templates. A generator is kept as given until its reporter folds
it in; what does not carry over is noted at the generator's own line then.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from coordinator.config.buildbot.log import DIFFERENT, UNSUPPORTED, Unsupported, note_at
from coordinator.domain.location import caller_location

TEMPLATES = "give MailNotifier subject=, body= and html= templates (docs/notifiers.md)"
DESCRIPTIONS = ("give the reporter startDescription=, endDescription= and pendingDescription= "
                "templates (docs/reporters.md)")
UNSUPPORTED_OPTIONS = {
    "message_formatter": TEMPLATES,
    "subject": TEMPLATES,
    "schedulers": "use builders= or tags=",
    "branches": "use builders= or tags=",
    "report_new": "drop it (Gantry reports finished builds)",
    "add_logs": "messages link to the build, whose logs are one click away",
    "add_patch": "drop it",
}
SELECTING = ("builders", "tags")
# What each generator reports for a status push: the request, the start, the end of a build.
MOMENTS = {
    "BuildRequestGenerator": ("pending",),
    "BuildStartEndStatusGenerator": ("start", "end"),
    "BuildStatusGenerator": ("end",),
}
# The formatter options of those generators, and the description each becomes.
FORMATTERS = {"formatter": "pending", "start_formatter": "start", "end_formatter": "end",
              "message_formatter": "end"}


@dataclass
class Generator:
    kind: str
    options: dict[str, Any] = field(default_factory=dict)
    defined_at: tuple[str, int] = ("<unknown>", 0)


@dataclass
class Formatter:
    """Buildbot's MessageFormatterRenderable: a fixed text (the status description)."""

    template: Any
    defined_at: tuple[str, int] = ("<unknown>", 0)


def generator(kind: str) -> Any:
    def make(**kwargs: Any) -> Generator:
        return Generator(kind, kwargs, caller_location())

    make.__name__ = kind
    return make


def formatter_renderable(template: Any = None, subject: Any = None) -> Formatter:
    return Formatter(template, caller_location())


def _given(generators: Any, what: str, where: tuple[str, int]) -> list[Generator] | None:
    """The generators to fold; None (after a note) when they are not a list of generators."""
    if not isinstance(generators, list | tuple):
        note_at(UNSUPPORTED, f"{what}(generators=...) must be a list of generators", where)
        return None
    gens = [g for g in generators if not isinstance(g, Unsupported)]  # reported where written
    others = [g for g in gens if not isinstance(g, Generator)]
    if others:
        note_at(UNSUPPORTED, f"{what}(generators=[{others[0]!r}]): give reporters.BuildStatusGenerator(...)", where)
        return None
    return gens


def fold_mail(what: str, kwargs: dict[str, Any], where: tuple[str, int]) -> dict[str, Any]:
    """MailNotifier and HttpStatusPush: one BuildStatusGenerator (or, for mail, one
    BuildSetStatusGenerator) becomes the reporter's mode=, builders=, tags=."""
    if "generators" not in kwargs:
        return kwargs
    gens = _given(kwargs.pop("generators"), what, where)
    if gens is None:
        return kwargs
    kinds = ("BuildStatusGenerator", "BuildSetStatusGenerator")
    if len(gens) != 1 or gens[0].kind not in kinds:
        note_at(UNSUPPORTED, f"{what}(generators=...): Gantry takes one BuildStatusGenerator or "
                             "BuildSetStatusGenerator a reporter; make one reporter per generator", where)
        return kwargs
    [gen] = gens
    if gen.kind == "BuildSetStatusGenerator":
        if what != "reporters.MailNotifier":
            note_at(UNSUPPORTED, f"{what}(generators=[BuildSetStatusGenerator(...)]): use BuildStatusGenerator",
                    where)
            return kwargs
        kwargs["buildSetSummary"] = True
    options = _supported(gen, ("mode", *SELECTING), TEMPLATES)
    return {**kwargs, **options}


def fold_status(what: str, kwargs: dict[str, Any], where: tuple[str, int]) -> dict[str, Any]:
    """A commit-status push: Gantry's reports pending, started and finished (Buildbot's default
    generators). The generators' builders=/tags= select the builds; their
    MessageFormatterRenderable texts become the description templates."""
    if "generators" not in kwargs:
        return kwargs
    gens = _given(kwargs.pop("generators"), what, where)
    if gens is None:
        return kwargs
    wrong = [g for g in gens if g.kind not in MOMENTS]
    if wrong or not gens:
        kind = wrong[0].kind if wrong else "no generator"
        note_at(UNSUPPORTED, f"{what}(generators=[{kind}]): a status push takes BuildRequestGenerator, "
                             "BuildStartEndStatusGenerator or BuildStatusGenerator", where)
        return kwargs
    selected: dict[str, Any] | None = None
    moments: set[str] = set()
    for gen in gens:
        options = _supported(gen, (*SELECTING, "mode", *FORMATTERS), DESCRIPTIONS)
        moments.update(MOMENTS[gen.kind])
        mode = options.pop("mode", None)
        if mode is not None and mode != "all" and mode != ("all",):
            note_at(DIFFERENT, f"reporters.{gen.kind}(mode={mode!r}): a status push reports the "
                               "result of every build it selects", gen.defined_at)
        for option, phase in FORMATTERS.items():
            if option in options:
                text = _description(gen, option, options.pop(option))
                if text is not None:
                    kwargs[f"{phase}Description"] = text
        chosen = {k: options[k] for k in SELECTING if k in options}
        if selected is not None and chosen != selected:
            note_at(UNSUPPORTED, f"{what}(generators=...): the generators select different builds; "
                                 "make one reporter per builders=/tags= choice", gen.defined_at)
        selected = chosen if selected is None else selected
    missing = [m for m in ("pending", "start", "end") if m not in moments]
    if missing:
        note_at(DIFFERENT, f"{what}: also reports {' and '.join(missing)} (Gantry's status pushes report "
                           "the request, the start and the end of each build)", where)
    return {**kwargs, **(selected or {})}


def _supported(gen: Generator, allowed: tuple[str, ...], templates: str) -> dict[str, Any]:
    """The generator's `allowed` options; each other one noted at the generator's line."""
    options = {k: v for k, v in gen.options.items() if k in allowed}
    for key in sorted(set(gen.options) - set(options)):
        if isinstance(gen.options[key], Unsupported):
            continue  # a MessageFormatter(...) call: reported where it was written
        instead = templates if key in FORMATTERS else UNSUPPORTED_OPTIONS.get(key, f"Gantry's reporters have no {key}")
        note_at(UNSUPPORTED, f"reporters.{gen.kind}({key}=...): {instead}", gen.defined_at)
    return options


def _description(gen: Generator, option: str, value: Any) -> str | None:
    """A MessageFormatterRenderable's fixed text as a description template ($ kept literal)."""
    if isinstance(value, Unsupported) or value is None:
        return None
    if isinstance(value, Formatter) and isinstance(value.template, str):
        return value.template.replace("$", "$$")
    note_at(UNSUPPORTED, f"reporters.{gen.kind}({option}=...): {DESCRIPTIONS}", gen.defined_at)
    return None
