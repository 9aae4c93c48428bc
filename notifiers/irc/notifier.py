"""``IRC(...)``: the configuration of the IRC bot, with Buildbot's option names, and the
notifier half of it (which builds are announced, and the stored announcement).

Announcements go through the notification outbox like mail: the event decides, the text is
stored, and delivery hands it to the running bot (:class:`~notifiers.irc.bot.IrcBot`, started
by the coordinator), which raises when it is not on the server or in its channels - so an
announcement made while the server is down is delivered when the bot is back, and `gantry
notifications` shows it meanwhile. Commands are answered by the bot itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from coordinator.domain.results import Result
from notifiers.base import DeliveryError, Notifier
from notifiers.decide import is_message_needed
from notifiers.irc.commands import expand_authz
from notifiers.irc.messages import Formatter
from notifiers.render import MessageContext

# Buildbot's IRC notify_events, plus the mail notifiers' mode names (one vocabulary for both).
NOTIFY_EVENTS = (
    "started", "finished", "success", "warnings", "failure", "exception", "cancelled",
    "problem", "recovery", "worse", "better",
    "all", "passing", "failing", "change",
)
_AS_MODE = {"finished": "all", "success": "passing", "failure": "failing"}
_SEVERITY = (Result.SUCCESS, Result.WARNINGS, Result.FAILURE, Result.EXCEPTION)  # Buildbot's results_severity
_NICK = re.compile(r"^[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}-]{0,29}$")
_CHANNEL = re.compile(r"^[#&+!][^\s,\x07]{1,49}$")


class Announcer(Protocol):
    async def announce(self, text: str) -> None: ...


class IRC(Notifier):
    """``IRC(host, nick, channels, pm_to_nicks=None, port=6667, notify_events=None, authz=None, ...)``

    As Buildbot's ``reporters.IRC``; ``channels`` are names or ``{"channel": "#x", "password": "key"}``.
    """

    kind = "irc"

    def __init__(
        self,
        host: str,
        nick: str,
        channels: Sequence[str | Mapping[str, str]] = (),
        pm_to_nicks: Sequence[str] | None = None,
        port: int = 6667,
        allowForce: bool | None = None,  # noqa: N803 - Buildbot's option names
        tags: Sequence[str] | None = None,
        password: str | Path | Callable[[], str] | None = None,
        notify_events: Iterable[str] | Mapping[str, Any] | None = None,
        showBlameList: bool = True,  # noqa: N803
        useRevisions: bool = False,  # noqa: N803
        useSSL: bool = False,  # noqa: N803
        useSASL: bool = False,  # noqa: N803
        lostDelay: float | None = None,  # noqa: N803
        failedDelay: float | None = None,  # noqa: N803
        useColors: bool = True,  # noqa: N803
        noticeOnChannel: bool = False,  # noqa: N803
        authz: Mapping[Any, Any] | None = None,
        builders: Sequence[str] | None = None,
        lineRate: float = 1.0,  # noqa: N803 - seconds between lines past the burst (Twisted's name)
        lineBurst: int = 4,  # noqa: N803
        sendQueueSize: int = 100,  # noqa: N803
        name: str | None = None,
    ) -> None:
        super().__init__(name or f"IRC:{nick}@{host}", (), builders, tags)
        self.host = host
        self.port = port
        self.nick = nick
        self.password = password
        self.useSSL = useSSL
        self.lostDelay = 1.0 if lostDelay is None else lostDelay
        self.failedDelay = 60.0 if failedDelay is None else failedDelay
        self.noticeOnChannel = noticeOnChannel
        self.lineRate = lineRate
        self.lineBurst = lineBurst
        self.sendQueueSize = sendQueueSize
        self.channels: list[tuple[str, str]] = []
        self.pm_to_nicks = list(pm_to_nicks or [])
        self.formatter = Formatter(
            use_revisions=useRevisions is True, show_blame_list=showBlameList is True, use_colors=useColors is True
        )
        if isinstance(notify_events, Mapping):  # Buildbot accepted {"failure": 1, ...}
            notify_events = [k for k, v in notify_events.items() if v]
        self.notify_events = tuple(notify_events or ())
        self.events = ("build.started", "build.finished") if "started" in self.notify_events else ("build.finished",)
        self.authz = expand_authz(authz, allowForce)
        self._bot: Announcer | None = None
        self._check(host, nick, channels, port, authz, allowForce, useSASL,
                    dict(showBlameList=showBlameList, useRevisions=useRevisions, useSSL=useSSL,
                         useColors=useColors, noticeOnChannel=noticeOnChannel))

    def _check(self, host: Any, nick: Any, channels: Any, port: Any, authz: Any, allow_force: Any,
               use_sasl: Any, flags: dict[str, Any]) -> None:
        err = self.errors.append
        if not isinstance(host, str) or not host.strip():
            err(f"host must be the IRC server's name, not {host!r}")
        if not isinstance(nick, str) or not _NICK.match(nick):
            err(f"nick {nick!r} is not a valid IRC nick (a letter or one of []\\`_^{{|}} first, up to 30 characters)")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            err(f"port must be a TCP port number, not {port!r}")
        if isinstance(channels, str | Mapping) or not isinstance(channels, Sequence):
            err(f"channels must be a list such as ['#builds'], not {channels!r}")
            channels = ()
        for c in channels:
            name, key = (c.get("channel"), c.get("password") or "") if isinstance(c, Mapping) else (c, "")
            if not isinstance(name, str) or not _CHANNEL.match(name) or not isinstance(key, str):
                err(f"channel {c!r} is not valid: use '#name' or {{'channel': '#name', 'password': 'key'}}")
            else:
                self.channels.append((name, key))
        for n in self.pm_to_nicks:
            if not isinstance(n, str) or not _NICK.match(n):
                err(f"pm_to_nicks: {n!r} is not a valid IRC nick")
        for e in self.notify_events:
            if e not in NOTIFY_EVENTS:
                err(f"unknown notify_events entry {e!r}; use some of {', '.join(NOTIFY_EVENTS)}")
        if allow_force is not None and authz is not None:
            err("If you specify authz, you must not use allowForce anymore")
        if allow_force is not None and not isinstance(allow_force, bool):
            err(f"allowForce must be True or False, not {allow_force!r}")
        if authz is not None and not isinstance(authz, Mapping):
            err(f"authz must be a dict such as {{'force': ['alice'], 'stop': ['alice']}}, not {authz!r}")
        for acl in (authz or {}).values() if isinstance(authz, Mapping) else ():
            if not isinstance(acl, list | tuple | bool | str):
                err(f"authz values must be True, False or a list of nicks, not {acl!r}")
        if self.password is not None and not isinstance(self.password, str | Path) and not callable(self.password):
            err(f"password must be a string, a Path to a secret file or a function, not {self.password!r}")
        if use_sasl:
            err("useSASL is not supported; use password= (sent to NickServ as IDENTIFY)")
        for option, value in flags.items():
            if not isinstance(value, bool):
                err(f"{option} must be True or False, not {value!r}")
        for option, value in (("lostDelay", self.lostDelay), ("failedDelay", self.failedDelay),
                              ("lineRate", self.lineRate)):
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                err(f"{option} must be seconds > 0, not {value!r}")
        for option, value in (("lineBurst", self.lineBurst), ("sendQueueSize", self.sendQueueSize)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                err(f"{option} must be a whole number >= 1, not {value!r}")
        if not self.channels and not self.pm_to_nicks and self.notify_events:
            err("notify_events needs somewhere to announce: give channels or pm_to_nicks")

    def password_value(self) -> str | None:
        """The NickServ password: a string, the first line of a secret file (a Path), or a
        function's return value - read at each connection, so a rotated secret is picked up."""
        pw = self.password
        if isinstance(pw, Path):
            lines = pw.read_text().strip().splitlines()
            return lines[0].strip() if lines else None
        return pw() if callable(pw) else pw

    # ---------------------------------------------------------------- which builds

    def wants_result(self, result: Result, previous: Result | None) -> bool:
        own = ("started", "recovery", "worse", "better")  # not mail modes: decided below
        modes = tuple(_AS_MODE.get(e, e) for e in self.notify_events if e not in own)
        if is_message_needed(modes, result, previous):
            return True
        if previous not in _SEVERITY or result not in _SEVERITY:
            return False
        assert previous is not None
        if "recovery" in self.notify_events and previous in (Result.FAILURE, Result.EXCEPTION) and result in (
            Result.SUCCESS, Result.WARNINGS
        ):
            return True
        change = _SEVERITY.index(result) - _SEVERITY.index(previous)
        return ("worse" in self.notify_events and change > 0) or ("better" in self.notify_events and change < 0)

    # ---------------------------------------------------------------- the message

    def render(self, event: str, builds: list[MessageContext]) -> dict[str, Any] | None:
        ctx = builds[0]
        if event == "build.started":
            text = self.formatter.started(ctx.build, ctx.url)
        else:
            text = self.formatter.finished(ctx.build, ctx.url)
        targets = [n for n, _ in self.channels] + self.pm_to_nicks
        return {"text": text, "summary": f"IRC {', '.join(targets)}: {_plain(text)}"}

    def attach(self, bot: Announcer | None) -> None:
        """The running bot that delivers (set by the coordinator; None when it stops)."""
        self._bot = bot

    async def deliver(self, payload: dict[str, Any]) -> None:
        if self._bot is None:
            raise DeliveryError("the IRC bot is not running")
        await self._bot.announce(str(payload["text"]))


def _plain(text: str) -> str:
    """Without mIRC colour codes (for the notification's summary)."""
    return re.sub(r"\x03\d{0,2}|\x0f", "", text)
