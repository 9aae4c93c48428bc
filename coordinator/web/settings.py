"""The ``www`` part of the configuration, in Buildbot's shape:

    MasterConfig(www=dict(port=8010, change_hook_dialects={
        "github": {"secret": "...", "strict": True},
        "gitlab": {"secret": "..."},
        "gitea": {"secret": "..."},
    }))

``port`` is a number (all interfaces, as in Buildbot) or Buildbot's ``"tcp:8010"`` /
``"tcp:8010:interface=127.0.0.1"``. ``coordinator start --http HOST:PORT`` overrides it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from coordinator.web.hooks import DIALECTS, Dialect

KNOWN_KEYS = ("port", "change_hook_dialects")
TCP_PORT = re.compile(r"^tcp:(\d+)(?::interface=(.+))?$")


@dataclass
class WebSettings:
    host: str = "0.0.0.0"
    port: int | None = None  # None: no HTTP server
    dialects: dict[str, Dialect] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def enabled(self) -> bool:
        return self.port is not None


def web_settings(www: Any) -> WebSettings:
    """Read ``MasterConfig.www`` (None or a dict); problems go to ``errors``, never raised."""
    out = WebSettings()
    if www is None:
        return out
    if not isinstance(www, Mapping):
        out.errors.append(f"www must be a dict such as dict(port=8010, change_hook_dialects={{...}}), not {www!r}")
        return out
    unknown = sorted(set(www) - set(KNOWN_KEYS))
    if unknown:
        out.errors.append(f"www: unknown key(s) {', '.join(map(repr, unknown))}; known: {', '.join(KNOWN_KEYS)}")
    if "port" in www:
        _read_port(www["port"], out)
    hooks = www.get("change_hook_dialects", {})
    if not isinstance(hooks, Mapping):
        out.errors.append(f"www: change_hook_dialects must be a dict of dialect name -> options, not {hooks!r}")
        return out
    for name, options in hooks.items():
        if name not in DIALECTS:
            out.errors.append(f"www: unknown change hook dialect {name!r}; known: {', '.join(sorted(DIALECTS))}")
            continue
        if options is True:  # Buildbot accepts {"github": True}
            options = {}
        if not isinstance(options, Mapping):
            out.errors.append(f"www: options of change hook {name!r} must be a dict, not {options!r}")
            continue
        dialect = DIALECTS[name](dict(options))
        out.errors.extend(f"www: change hook {name!r}: {e}" for e in dialect.errors)
        out.dialects[name] = dialect
    return out


def _read_port(port: Any, out: WebSettings) -> None:
    if isinstance(port, int) and not isinstance(port, bool) and 0 <= port <= 65535:
        out.port = port
        return
    m = TCP_PORT.match(port) if isinstance(port, str) else None
    if m and int(m.group(1)) <= 65535:
        out.port = int(m.group(1))
        out.host = m.group(2) or out.host
        return
    out.errors.append(f"www: port must be a number (0-65535) or 'tcp:PORT[:interface=HOST]', not {port!r}")


def override_address(settings: WebSettings, address: str) -> None:
    """Apply ``--http HOST:PORT`` (raises ValueError with a message for a bad one)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"--http needs HOST:PORT (e.g. 127.0.0.1:8010, port 0 picks a free one), not {address!r}")
    settings.host = host.strip("[]") or "0.0.0.0"
    settings.port = int(port)
