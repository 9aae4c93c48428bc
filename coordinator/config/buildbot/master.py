"""A ``BuildmasterConfig`` dict (Buildbot's ``c``) as a Gantry ``MasterConfig``, each key noted
at the line that sets it."""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from coordinator.config.buildbot.log import (
    DIFFERENT,
    IGNORED,
    SAME,
    UNSUPPORTED,
    Call,
    MigrationLog,
    Unsupported,
    recording,
)
from coordinator.config.buildbot.util import BuilderConfig
from coordinator.config.buildbot.webauth import web_security
from coordinator.config.objects import MasterConfig
from coordinator.domain.scheduling.cancellers import CancellerRule
from coordinator.exposure import is_loopback
from coordinator.web.hooks import DIALECTS

# Gantry's own names, accepted as keys too (a dict written for Gantry before this layer).
NATIVE_KEYS = (
    "workers", "builders", "schedulers", "title", "notifiers", "url", "www", "secretsProviders",
    "allow_master_commands", "change_source", "listen", "db_url", "cancellers", "retention",
)
RENAMED = {"services": "notifiers", "buildbotURL": "url"}
IGNORED_KEYS = {
    "titleURL": "the web UI shows no title link",
    "buildbotNetUsageData": "Gantry sends no usage data",
    "logCompressionMethod": "Gantry stores logs its own way",
    "logCompressionLimit": "Gantry stores logs its own way",
    "logEncoding": "logs are stored as bytes and shown as UTF-8",
    "caches": "Gantry sizes its caches itself",
    "mq": "one coordinator has its own event bus",
}
UNSUPPORTED_KEYS = {
    "properties": "set properties= on the builders or schedulers",
    "collapseRequests": "set collapseRequests= on each util.BuilderConfig",
    "prioritizeBuilders": "give schedulers or builds a priority",
    "multiMaster": "run one coordinator",
    "manhole": "use the `gantry` commands and the gRPC API",
    "configurators": "Gantry keeps every build; remove old ones from the database yourself",
    "logMaxSize": "Gantry keeps whole logs",
    "logMaxTailSize": "Gantry keeps whole logs",
    "user_managers": "Gantry has no user database",
    "revlink": "drop it (no revision links)",
    "codebaseGenerator": "set codebase= on the change sources",
    "metrics": "drop it",
    "machines": "use worker labels (`gantry worker start --label`)",
    "projects": "use builder tags=",
}
WWW_KEYS = ("port", "change_hook_dialects")
WWW_IGNORED = (
    "plugins", "versions", "custom_templates_dir", "theme", "ui_default_config", "debug",
    "json_cache_seconds", "rest_minimum_version", "logfileName", "logRotateLength",
    "maxRotatedFiles", "cookie_expiration_time", "graphql", "default_page",
)
WWW_AUTH = {
    "avatar_methods": "drop it (Gantry's web UI shows no avatars)",
    "change_hook_auth": "protect the hooks with a change token (--change-token-file, docs/security.md)",
}
HOOK_IGNORED = {
    "debug": "Gantry logs what each delivery did",
    "verify": "Gantry makes no requests to the service",
    "token": "Gantry reads the payload only (no API calls: a pull request's change lists no files)",
    "github_api_endpoint": "Gantry reads the payload only (no API calls)",
}
HOOK_UNSUPPORTED = {"class": "Gantry's dialects cannot be replaced by a class"}
DICT_NAMED = "\0dict named "  # key_lines' key for a dict literal with a 'name' (never a config key)
TCP_PORT = re.compile(r"^tcp:(\d+)(?::interface=(.+))?$")


def key_lines(path: Path) -> dict[str, int]:
    """The first line setting each config key: ``c['key'] = ...`` or ``{'key': ...}``, else a
    ``key=`` keyword (``dict(port=...)``)."""
    keys: dict[str, int] = {}
    keywords: dict[str, int] = {}
    try:
        tree = ast.parse(path.read_text(), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return keys
    for node in ast.walk(tree):
        found: list[tuple[dict[str, int], Any, int]] = []
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            found.append((keys, node.slice.value, node.lineno))
        elif isinstance(node, ast.Dict):
            found += [(keys, k.value, k.lineno) for k in node.keys if isinstance(k, ast.Constant)]
            # A builder written as a dict ({'name': 'full1', ...}) is found by its name.
            for k, v in zip(node.keys, node.values, strict=True):
                if isinstance(k, ast.Constant) and k.value == "name" and isinstance(v, ast.Constant):
                    found.append((keys, f"{DICT_NAMED}{v.value!s}", node.lineno))
        elif isinstance(node, ast.keyword) and node.arg:
            found.append((keywords, node.arg, node.lineno))
        for table, key, line in found:
            if isinstance(key, str):
                table[key] = min(table.get(key, line), line)
    return {**keywords, **keys}


class BadKey(Exception):
    """A config key whose value has the wrong shape, at its line."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class _Notes:
    def __init__(self, log: MigrationLog, path: Path) -> None:
        self.log = log
        self.file = str(path.resolve())
        self.lines = key_lines(path)

    def __call__(self, kind: str, key: str, text: str, line_of: str | None = None) -> None:
        self.log.add(kind, text, (self.file, self.lines.get(line_of or key, 1)))


def from_buildmaster(bmc: Mapping[str, Any], path: Path, log: MigrationLog) -> tuple[MasterConfig, Call]:
    """The configuration `bmc` describes, and how to write it natively; notes go to `log`."""
    notes = _Notes(log, path)
    kw: dict[str, Any] = {}
    for key, value in bmc.items():
        if key in NATIVE_KEYS:
            kw[key] = value
        elif key in RENAMED:
            notes(SAME, key, f"c[{key!r}] -> {RENAMED[key]}")
            kw[RENAMED[key]] = value
        elif key == "protocols":
            _protocols(value, kw, notes)
        elif key in ("db", "db_url"):
            _db(value if key == "db" else {"db_url": value}, key, kw, notes)
        elif key in IGNORED_KEYS:
            notes(IGNORED, key, f"c[{key!r}] is ignored: {IGNORED_KEYS[key]}")
        elif key in UNSUPPORTED_KEYS:
            notes(UNSUPPORTED, key, f"c[{key!r}]: {UNSUPPORTED_KEYS[key]}")
        else:
            notes(UNSUPPORTED, key, f"c[{key!r}]: Gantry knows no such configuration key")
    if "www" in kw:
        kw["www"] = _www(kw["www"], notes)
    if isinstance(kw.get("builders"), list | tuple):
        kw["builders"] = [_builder(b, notes) if isinstance(b, Mapping) else b for b in kw["builders"]]
    for key in ("workers", "builders", "schedulers", "notifiers", "change_source", "secretsProviders"):
        value = kw.get(key)
        if key != "change_source" and key in kw and not isinstance(value, list | tuple):
            raise BadKey(notes.lines.get(key, 1), f"c[{key!r}] must be a list, not {value!r}")
        if isinstance(value, list | tuple):
            kw[key] = [v for v in value if not isinstance(v, Unsupported)]
        elif isinstance(value, Unsupported):
            kw[key] = []
    www = bmc.get("www")
    if isinstance(www, Mapping) and ("auth" in www or "authz" in www):
        _web_security(www, kw, notes)
    # Buildbot's build cancellers are services too; Gantry keeps them apart from the notifiers.
    services = kw.get("notifiers", [])
    if any(isinstance(s, list) for s in services):  # an OldBuildCanceller with several filters
        services = kw["notifiers"] = [x for s in services for x in (s if isinstance(s, list) else [s])]
    if any(isinstance(s, CancellerRule) for s in services):
        kw["notifiers"] = [s for s in services if not isinstance(s, CancellerRule)]
        kw["cancellers"] = [*kw.get("cancellers", ()), *(s for s in services if isinstance(s, CancellerRule))]
    cfg = MasterConfig(**kw)
    cfg.defined_at = (str(path.resolve()), 1)
    native = {k: v for k, v in kw.items() if k != "db_url"}
    if "db_url" in kw:
        native["db_url"] = resolved_db_url(kw["db_url"], path)
        cfg.db_url = native["db_url"]
    return cfg, Call("MasterConfig", (), native)


def _builder(spec: Mapping[str, Any], notes: _Notes) -> Any:
    """Buildbot still takes a builder as a dict of BuilderConfig's keywords."""
    since = len(notes.log.entries)
    line = notes.lines.get(f"{DICT_NAMED}{spec.get('name')!s}") or notes.lines.get("builders", 1)
    where = (notes.file, line)
    with recording(notes.log):
        builder = BuilderConfig(**spec)
    builder.defined_at = where
    notes.log.relocate(since, where)
    return builder


def _web_security(www: Mapping[str, Any], kw: dict[str, Any], notes: _Notes) -> None:
    """c['www']['auth'/'authz'] as the top-level auth/authz (scoped rules need the builders)."""
    where = {k: (notes.file, notes.lines.get(k, 1)) for k in ("auth", "authz")}
    names = [b.name for b in kw.get("builders", ()) if isinstance(getattr(b, "name", None), str)]
    with recording(notes.log):
        auth, authz = web_security(www.get("auth"), www.get("authz"), where, names)
    kw.update({k: v for k, v in (("auth", auth), ("authz", authz)) if v is not None})


def _protocols(value: Any, kw: dict[str, Any], notes: _Notes) -> None:
    if not isinstance(value, Mapping) or not value:
        notes(UNSUPPORTED, "protocols",
              f"c['protocols'] must be a dict such as {{'pb': {{'port': 9989}}}}, not {value!r}")
        return
    name = "pb" if "pb" in value else next(iter(value))
    options = value[name] if isinstance(value[name], Mapping) else {}
    port = options.get("port")
    host = "0.0.0.0"  # Buildbot's pb port listens on every interface: workers are elsewhere
    m = TCP_PORT.match(port) if isinstance(port, str) else None
    if m:
        port, host = int(m.group(1)), m.group(2) or host
    elif isinstance(port, str) and port.isdigit():
        port = int(port)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        notes(UNSUPPORTED, "protocols", f"c['protocols'][{name!r}]['port'] must be a port number or "
                                        f"'tcp:PORT[:interface=HOST]', not {port!r}")
        return
    kw["listen"] = f"{host}:{port}"
    beyond = "" if is_loopback(host) else "; beyond loopback only with TLS and auth, or --insecure"
    notes(DIFFERENT, "protocols", f"c['protocols'] {name} port -> listen={kw['listen']!r} (gRPC: Gantry "
                                  f"workers connect, buildbot-worker cannot; --listen overrides it{beyond})")
    for other in sorted(set(value) - {name}):
        notes(IGNORED, "protocols", f"c['protocols'][{other!r}] is ignored: Gantry serves one worker protocol")


def _db(value: Any, key: str, kw: dict[str, Any], notes: _Notes) -> None:
    url = value.get("db_url") if isinstance(value, Mapping) else None
    if not isinstance(url, str) or not url:
        notes(UNSUPPORTED, key, f"c[{key!r}] must give a db_url such as 'sqlite:///state.sqlite', not {value!r}")
        return
    for other in sorted(set(value) - {"db_url"}) if isinstance(value, Mapping) else ():
        notes(IGNORED, key, f"c['db'][{other!r}] is ignored: Gantry tunes its own connections")
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    if scheme not in ("sqlite", "postgresql", "postgres"):
        notes(UNSUPPORTED, key, f"c['db'] db_url {scheme}: Gantry stores in SQLite or PostgreSQL")
        return
    if url.rstrip("/") == "sqlite:":
        notes(UNSUPPORTED, key, "c['db'] db_url 'sqlite://' (in memory): give a file, e.g. 'sqlite:///state.sqlite'")
        return
    kw["db_url"] = url
    notes(DIFFERENT, key, "c['db'] db_url -> db_url (Gantry's own tables: Buildbot's history is not "
                          "imported, use a new file; --db overrides it)", line_of="db_url")


def resolved_db_url(url: str, path: Path) -> str:
    """A relative SQLite path is relative to the configuration's directory (Buildbot: the master's
    base directory, where master.cfg lives), not to wherever the coordinator was started."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url[len(prefix):].startswith("/"):
        return prefix + str((path.resolve().parent / url[len(prefix):]).resolve())
    return url


def _dialect_options(name: str, options: Any, notes: _Notes) -> Any:
    """Buildbot's options of a change hook dialect that Gantry's lacks, noted (and dropped)."""
    if not isinstance(options, Mapping):
        return options  # checkconfig reports the shape
    kept = {}
    for key, value in options.items():
        if key in HOOK_IGNORED:
            notes(IGNORED, name, f"c['www'] change hook {name!r} option {key!r} is ignored: {HOOK_IGNORED[key]}")
        elif key in HOOK_UNSUPPORTED or key.endswith("_property_whitelist"):
            instead = HOOK_UNSUPPORTED.get(key, "drop it (changes carry Gantry's own payload properties)")
            notes(UNSUPPORTED, name, f"c['www'] change hook {name!r} option {key!r}: {instead}")
        else:
            kept[key] = value
    return kept


def _www(www: Any, notes: _Notes) -> Any:
    """Gantry's www (c['www']['auth'/'authz'] are for _web_security)."""
    if not isinstance(www, Mapping):
        return www  # checkconfig reports the shape
    out: dict[str, Any] = {}
    for key, value in www.items():
        if key in WWW_KEYS:
            out[key] = value
        elif key in WWW_IGNORED:
            notes(IGNORED, key, f"c['www'][{key!r}] is ignored: Gantry's web UI is built in")
        elif key in ("auth", "authz"):
            pass  # _web_security, once the builders are known
        elif key in ("avatar_methods", "change_hook_auth"):
            notes(UNSUPPORTED, key, f"c['www'][{key!r}]: {WWW_AUTH[key]}")
        else:
            notes(UNSUPPORTED, key, f"c['www'][{key!r}]: Gantry's www takes only port and change_hook_dialects")
    hooks = out.get("change_hook_dialects")
    if isinstance(hooks, Mapping):
        kept = {}
        for name, options in hooks.items():
            if name in DIALECTS:
                kept[name] = _dialect_options(name, options, notes)
            else:
                notes(UNSUPPORTED, name, f"c['www'] change hook dialect {name!r}: Gantry has "
                                         f"{', '.join(sorted(DIALECTS))} (or `gantry hook install`)")
        out["change_hook_dialects"] = kept
    if "port" in out:
        notes(SAME, "www", "c['www'] port -> www port (--http overrides it)")
    return out
