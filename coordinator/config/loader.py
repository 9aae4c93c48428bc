"""Load a configuration file and report every error with its file, line and what is wrong."""

from __future__ import annotations

import runpy
import traceback
from pathlib import Path
from typing import Any

from coordinator.config.buildbot import __all__ as BUILDBOT_NAMESPACES  # noqa: N812
from coordinator.config.buildbot.log import recording
from coordinator.config.buildbot.master import BadKey, from_buildmaster, resolved_db_url
from coordinator.config.buildbot.migration import Migration
from coordinator.config.objects import MasterConfig
from coordinator.config.problems import ConfigProblem
from coordinator.config.security import TLS, Auth
from coordinator.domain.auth.authz import Authz
from coordinator.domain.builds.builders import Builder
from coordinator.domain.builds.locks import BaseLock, LockAccess, lock_errors
from coordinator.domain.builds.retention import Retention
from coordinator.domain.changes.filters import ChangeFilter
from coordinator.domain.changes.sources import GitPoller
from coordinator.domain.changes.svnpoller import SVNPoller
from coordinator.domain.properties.renderables import Secret
from coordinator.domain.scheduling.cancellers import CancellerRule
from coordinator.domain.scheduling.matrix import Matrix
from coordinator.domain.scheduling.schedulers import ChangeScheduler, Scheduler
from coordinator.domain.scheduling.triggerable import Dependent, Triggerable
from coordinator.domain.scheduling.try_ import TryScheduler
from coordinator.domain.steps.base import BuildStep
from coordinator.domain.steps.master import DISABLED as MASTER_COMMANDS_DISABLED
from coordinator.domain.steps.master import MasterShellCommand
from coordinator.domain.steps.pipeline import PipelineStep
from coordinator.domain.steps.source import Git
from coordinator.domain.steps.trigger import Trigger
from coordinator.domain.workers.sessions import WorkerDecl
from coordinator.web.settings import web_settings
from notifiers.base import Notifier

NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


class ConfigError(Exception):
    def __init__(self, problems: list[ConfigProblem], migration: Migration | None = None) -> None:
        self.problems = problems
        self.migration = migration  # what the file's run noted, when it ran
        super().__init__("\n".join(str(p) for p in problems))


def load_config(path: str | Path) -> MasterConfig:
    """Run the file and validate what it built; raises ConfigError listing every problem."""
    return load_config_noted(path)[0]


def load_config_noted(path: str | Path) -> tuple[MasterConfig, Migration]:
    """`load_config`, with what the Buildbot compatibility layer noted (notes to show the user,
    the migration report); a Buildbot option Gantry lacks is a ConfigProblem."""
    path = Path(path)
    shown = str(path)
    if not path.is_file():
        raise ConfigError([ConfigProblem(shown, 0, "no such configuration file")])
    try:
        with recording() as log:
            namespace = runpy.run_path(str(path), run_name="gantry_config")
    except SyntaxError as exc:
        raise ConfigError([ConfigProblem(shown, exc.lineno or 0, f"syntax error: {exc.msg}")]) from None
    except BaseException as exc:  # the user's code may raise anything
        if isinstance(exc, KeyboardInterrupt):
            raise
        line = _line_in(exc, path)
        raise ConfigError(
            [ConfigProblem(shown, line, f"{type(exc).__name__}: {exc}{_buildbot_hint(exc)}")]
        ) from None
    cfg = namespace.get("config")
    native = None
    if cfg is None and isinstance(namespace.get("BuildmasterConfig"), dict):
        try:
            cfg, native = from_buildmaster(namespace["BuildmasterConfig"], path, log)
        except BadKey as exc:
            raise ConfigError([ConfigProblem(shown, exc.line, exc.message)]) from None
        except TypeError as exc:  # a builder dict's values of the wrong type
            raise ConfigError([ConfigProblem(shown, _line_in(exc, path) or 1, f"BuildmasterConfig: {exc}")]) from None
    if not isinstance(cfg, MasterConfig):
        raise ConfigError(
            [ConfigProblem(shown, 0, "the file must assign `config = MasterConfig(...)` "
                           "(or a `BuildmasterConfig` dict)")]
        )
    if isinstance(cfg.db_url, str):
        cfg.db_url = resolved_db_url(cfg.db_url, path)
    migration = Migration(path, log, native)
    problems = migration.problems() + validate(cfg, path)
    if problems:
        raise ConfigError(problems, migration)
    return cfg, migration


def _buildbot_hint(exc: BaseException) -> str:
    """A Buildbot master.cfg run as is: say which import line makes it load."""
    missing_module = isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] == "buildbot"
    missing_namespace = isinstance(exc, NameError) and exc.name in BUILDBOT_NAMESPACES
    if missing_module or missing_namespace:
        return " (a Buildbot master.cfg loads with `from coordinator.config.buildbot import *`)"
    return ""


def _line_in(exc: BaseException, path: Path) -> int:
    target = str(path.resolve())
    line = 0
    for frame in traceback.extract_tb(exc.__traceback__):
        if str(Path(frame.filename).resolve()) == target:
            line = frame.lineno or 0
    return line


def validate(cfg: MasterConfig, path: Path) -> list[ConfigProblem]:
    shown = str(path)
    target = str(path.resolve())
    problems: list[ConfigProblem] = []

    def at(obj: Any) -> int:
        where = getattr(obj, "defined_at", None)
        if where and str(Path(where[0]).resolve()) == target:
            return int(where[1])
        cfg_where = cfg.defined_at
        return int(cfg_where[1]) if str(Path(cfg_where[0]).resolve()) == target else 0

    def add(obj: Any, message: str) -> None:
        problems.append(ConfigProblem(shown, at(obj), message))

    worker_names: set[str] = set()
    for w in cfg.workers:
        if not isinstance(w, WorkerDecl):
            add(cfg, f"workers must contain Worker(...) objects, not {w!r}")
            continue
        if not _good_name(w.name):
            add(w, f"worker name {w.name!r} is not valid: use letters, digits, '_', '-', '.'")
        if w.name in worker_names:
            add(w, f"worker {w.name!r} is defined twice")
        worker_names.add(w.name)
        if isinstance(w.secret, Secret):
            if not cfg.secretsProviders:
                add(w, f"worker {w.name!r}: Secret({w.secret.name!r}) needs secretsProviders=[...]")
        elif not isinstance(w.secret, str) or not w.secret:
            add(w, f"worker {w.name!r} needs a secret (a non-empty string)")
        if not isinstance(w.max_builds, int) or w.max_builds < 1:
            add(w, f"worker {w.name!r}: max_builds must be a whole number >= 1, not {w.max_builds!r}")
        if not _seconds(w.missing_timeout):
            add(w, f"worker {w.name!r}: missing_timeout must be a number of seconds >= 0, not {w.missing_timeout!r}")

    locks_seen: dict[str, BaseLock] = {}

    def check_locks(owner: Any, what: str, items: Any) -> None:
        for err in lock_errors(items):
            add(owner, f"{what}: {err}")
        for item in items if isinstance(items, list | tuple) else ():
            lock = item.lock if isinstance(item, LockAccess) else item
            if not isinstance(lock, BaseLock) or not isinstance(lock.name, str):
                continue
            first = locks_seen.setdefault(lock.name, lock)
            if first is not lock and first.signature() != lock.signature():
                add(lock, f"lock {lock.name!r} is declared twice with different kinds or counts: "
                          f"{first!r} (line {at(first)}) and {lock!r}; use one lock object")

    builder_names: set[str] = set()
    for b in cfg.builders:
        if not isinstance(b, Builder):
            add(cfg, f"builders must contain Builder(...) objects, not {b!r}")
            continue
        if not _good_name(b.name):
            add(b, f"builder name {b.name!r} is not valid: use letters, digits, '_', '-', '.'")
        if b.name in builder_names:
            add(b, f"builder {b.name!r} is defined twice")
        builder_names.add(b.name)
        if not b.workers:
            add(b, f"builder {b.name!r} has no workers")
        for wn in b.workers:
            if wn not in worker_names:
                add(b, f"builder {b.name!r} uses unknown worker {wn!r}")
        if not b.steps:
            add(b, f"builder {b.name!r} has no steps")
        _check_scheduling(b, lambda msg, b=b: add(b, msg))
        _check_matrix(b, lambda msg, b=b: add(b, msg))
        check_locks(b, f"builder {b.name!r}", b.locks)
        if b.missing_timeout is not None and not _seconds(b.missing_timeout):
            add(b, f"builder {b.name!r}: missing_timeout must be a number of seconds >= 0, not {b.missing_timeout!r}")
        step_names: set[str] = set()
        for s in b.steps:
            if not isinstance(s, BuildStep):
                add(b, f"builder {b.name!r}: steps must be step objects such as ShellCommand(...), not {s!r}")
                continue
            for err in s.errors:
                add(s, f"step {s.name!r} of builder {b.name!r}: {err}")
            if isinstance(s, MasterShellCommand) and cfg.allow_master_commands is not True:
                add(s, MASTER_COMMANDS_DISABLED)
            check_locks(s, f"step {s.name!r} of builder {b.name!r}", getattr(s, "locks", []))
            if s.name in step_names:
                add(s, f"builder {b.name!r} has two steps named {s.name!r}; give one a name=")
            if isinstance(s, PipelineStep) and s is not b.steps[-1]:
                add(s, f"builder {b.name!r}: a Pipeline step must be the last step (its steps run after it)")
            step_names.add(s.name)

    sched_names: set[str] = set()
    by_name = {b.name: b for b in cfg.builders if isinstance(b, Builder)}
    for sched in cfg.schedulers:
        if not isinstance(sched, Scheduler):
            add(cfg, f"schedulers must contain scheduler objects, not {sched!r}")
            continue
        if not _good_name(sched.name):
            add(sched, f"scheduler name {sched.name!r} is not valid: use letters, digits, '_', '-', '.' "
                       "(up to 128 characters)")
        if sched.name in sched_names:
            add(sched, f"scheduler {sched.name!r} is defined twice")
        sched_names.add(sched.name)
        if not sched.builders:
            add(sched, f"scheduler {sched.name!r} has no builders")
        for err in getattr(sched, "errors", ()):
            add(sched, f"scheduler {sched.name!r}: {err}")
        for bn in sched.builders:
            if bn not in builder_names:
                add(sched, f"scheduler {sched.name!r} names unknown builder {bn!r}")
        if isinstance(sched, TryScheduler):
            for bn in sched.builders:
                tried = by_name.get(bn)
                if tried is not None and not any(isinstance(s, Git) for s in tried.steps):
                    add(sched, f"TryScheduler {sched.name!r}: builder {bn!r} has no Git step to apply a try patch")
        if isinstance(sched, ChangeScheduler):
            _check_change_scheduler(sched, lambda msg, s=sched: add(s, msg))
            t = sched.tree_stable_timer
            if t is not None and (not isinstance(t, int | float) or t < 0):
                add(sched, f"scheduler {sched.name!r}: tree_stable_timer must be None or seconds >= 0, not {t!r}")

    _check_triggers(cfg, add)

    notifier_names: set[str] = set()
    for n in cfg.notifiers:
        if not isinstance(n, Notifier):
            add(cfg, f"notifiers must contain MailNotifier(...) or HttpStatusPush(...) objects, not {n!r}")
            continue
        for err in n.errors:
            add(n, f"notifier {n.name!r}: {err}")
        if n.name in notifier_names:
            add(n, f"notifier {n.name!r} is defined twice; give one a name=")
        notifier_names.add(n.name)
        for bn in n.builders or ():
            if bn not in builder_names:
                add(n, f"notifier {n.name!r} names unknown builder {bn!r}")
    for provider in cfg.secretsProviders:
        if not callable(getattr(provider, "get", None)):
            add(cfg, f"secretsProviders must contain providers such as SecretInAFile(...), not {provider!r}")
            continue
        check = getattr(provider, "check", None)
        for err in check() if callable(check) else ():
            add(provider, err)
    if not isinstance(cfg.allow_master_commands, bool):
        add(cfg, f"allow_master_commands must be True or False, not {cfg.allow_master_commands!r}")
    _check_change_sources(cfg.change_source, add, cfg)
    for name in ("listen", "db_url"):
        value = getattr(cfg, name)
        if value is not None and (not isinstance(value, str) or not value):
            add(cfg, f"{name} must be None or a non-empty string, not {value!r}")
    _check_cancellers(cfg, builder_names, add)
    _check_retention(cfg, add)
    if not isinstance(cfg.url, str):
        add(cfg, f"url must be a string such as 'https://ci.example.org/', not {cfg.url!r}")
    for err in web_settings(cfg.www).errors:
        add(cfg, err)
    if cfg.tls is not None and not isinstance(cfg.tls, TLS):
        add(cfg, f"tls must be TLS(cert=..., key=...), not {cfg.tls!r}")
    if cfg.auth is not None:
        if not isinstance(cfg.auth, Auth):
            add(cfg, f"auth must be Auth(...), not {cfg.auth!r}")
        else:
            for err in cfg.auth.problems():
                add(cfg.auth, err)
    if cfg.authz is not None:
        if not isinstance(cfg.authz, Authz):
            add(cfg, f"authz must be Authz(roles=[...], rules=[...]), not {cfg.authz!r}")
        else:
            for rule in cfg.authz.rules:
                for err in rule.problems():
                    add(rule, err)
            if cfg.auth is None:
                add(cfg.authz, "authz needs auth=Auth(...): without it nobody can be identified")
    return problems


def _check_scheduling(b: Builder, add: Any) -> None:
    """The builder's worker selection options (Buildbot's names and types)."""
    labels = b.worker_labels
    if not isinstance(labels, list) or not all(isinstance(x, str) and x.strip() and "," not in x for x in labels):
        add(f"builder {b.name!r}: worker_labels must be a list of label strings such as ['linux'], not {labels!r}")
    for option in ("nextWorker", "canStartBuild", "nextBuild"):
        fn = getattr(b, option)
        if fn is not None and not callable(fn):
            add(f"builder {b.name!r}: {option} must be a function, not {fn!r}")
    collapse = b.collapseRequests
    if not isinstance(collapse, bool) and not callable(collapse):
        add(f"builder {b.name!r}: collapseRequests must be True, False or a function "
            f"(builder, req1, req2) -> bool, not {collapse!r}")


def _check_matrix(b: Builder, add: Any) -> None:
    if b.matrix is not None and not isinstance(b.matrix, Matrix):
        add(f"builder {b.name!r}: matrix must be a Matrix(...), not {b.matrix!r}")
    elif b.matrix is not None:
        for err in b.matrix.errors:
            add(f"builder {b.name!r}: {err}")
    if not isinstance(b.fail_fast, bool):
        add(f"builder {b.name!r}: fail_fast must be True or False, not {b.fail_fast!r}")
    elif b.fail_fast and b.matrix is None:
        add(f"builder {b.name!r}: fail_fast needs a matrix (it stops the other combinations)")
def _check_retention(cfg: MasterConfig, add: Any) -> None:
    builders = {b.name for b in cfg.builders if isinstance(b, Builder)}
    for rule in cfg.retention:
        if not isinstance(rule, Retention):
            add(cfg, f"retention must contain Retention(...) objects, not {rule!r}")
            continue
        for err in rule.problems():
            add(rule, f"Retention: {err}")
        for name in rule.builders:
            if isinstance(name, str) and name not in builders:
                add(rule, f"Retention names builder {name!r}, which is not configured")


def _check_change_sources(sources: list[Any], add: Any, cfg: MasterConfig) -> None:
    names: set[str] = set()
    for src in sources:
        if not isinstance(src, GitPoller | SVNPoller):
            add(cfg, f"change_source must contain GitPoller(...) objects (or HgPoller, SVNPoller), not {src!r}")
            continue
        for err in src.errors:
            add(src, f"{type(src).__name__} {src.repourl!r}: {err}")
        if src.name in names:
            add(src, f"two change sources are named {src.name!r} (the same repourl twice?); give one a name=")
        names.add(src.name)


def _check_cancellers(cfg: MasterConfig, builder_names: set[str], add: Any) -> None:
    names: set[str] = set()
    for c in cfg.cancellers:
        if not isinstance(c, CancellerRule):
            add(cfg, f"cancellers must contain OldBuildCanceller(...) or FailingBuildsetCanceller(...), not {c!r}")
            continue
        kind = type(c).__name__
        for err in c.errors:
            add(c, f"{kind} {c.name!r}: {err}")
        if c.name in names:
            add(c, f"two cancellers are named {c.name!r}")
        names.add(c.name)
        for bn in [*c.builders, *(getattr(c, "cancel", None) or ())]:
            if isinstance(bn, str) and bn not in builder_names:
                add(c, f"{kind} {c.name!r} names unknown builder {bn!r}")


def _check_triggers(cfg: MasterConfig, add: Any) -> None:
    """Trigger steps name Triggerable schedulers; a Dependent's upstream is configured."""
    by_name = {s.name: s for s in cfg.schedulers if isinstance(s, Scheduler)}
    triggerable = sorted(n for n, s in by_name.items() if isinstance(s, Triggerable))
    for b in cfg.builders:
        for step in getattr(b, "steps", ()):
            if not isinstance(step, Trigger):
                continue
            for name in step.static_scheduler_names():
                if isinstance(by_name.get(name), Triggerable):
                    continue
                what = f"unknown scheduler {name!r}" if name not in by_name else f"{name!r}, not a Triggerable"
                add(step, f"step {step.name!r} of builder {b.name!r} triggers {what} "
                          f"(Triggerable schedulers: {', '.join(triggerable) or 'none'})")
    for sched in by_name.values():
        if isinstance(sched, Dependent) and sched.upstream is not None and sched.upstream_name:
            if by_name.get(sched.upstream_name) is not sched.upstream:
                add(sched, f"scheduler {sched.name!r}: its upstream scheduler {sched.upstream_name!r} "
                           "is not in the configuration's schedulers")


def _check_change_scheduler(sched: ChangeScheduler, add: Any) -> None:
    flt = sched.change_filter
    if flt is not None and not isinstance(flt, ChangeFilter):
        add(f"scheduler {sched.name!r}: change_filter must be a ChangeFilter(...), not {flt!r}")
    elif flt is not None:
        for err in flt.errors:
            add(f"scheduler {sched.name!r}: {err}")
    fii = sched.file_is_important
    if fii is not None and not callable(fii) and not (
        isinstance(fii, str) or (isinstance(fii, list | tuple) and all(isinstance(g, str) for g in fii))
    ):
        add(f"scheduler {sched.name!r}: fileIsImportant must be a function of the change or path globs, not {fii!r}")


def _good_name(name: object) -> bool:
    return isinstance(name, str) and 0 < len(name) <= 128 and set(name) <= NAME_CHARS


def _seconds(value: object) -> bool:
    """A duration in seconds: a non-negative int or float (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
