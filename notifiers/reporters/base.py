"""What every commit-status reporter shares (Buildbot's ``ReporterBase`` with the default
generators of its status pushes): the states it reports, the context name, the target URL,
its token, and delivering a state only if no newer one for that commit went out first.

A reporter reacts to four events:

================================ ==========================================================
event                            state reported
================================ ==========================================================
``buildrequest.added``           pending: the request is submitted (no build page yet)
``buildrequest.cancelled``       the final state of CANCELLED (cancelled before it started)
``build.started``                running (GitHub and Gitea have no such state: pending)
``build.finished``               the build's result, mapped to the service's states
================================ ==========================================================

One notification per (reporter, build or request, event): each state is queued once (the
outbox's unique key) and delivered in the background with the outbox's retries. States of one
commit are independent notifications, so a retried older one could arrive after a newer one:
each delivery carries its event id and is skipped when a newer state for the same commit and
context was delivered first (the service would otherwise show "running" after "success").

A request collapsed into a newer one (``collapseRequests``) reports nothing more, as in
Buildbot: the build that absorbed it tests a newer commit, and marking the older one with that
result (or "skipped" as success) would claim a test that did not happen; its status stays
pending.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from coordinator.domain.errors import SecretNotFound
from coordinator.domain.model import Build, SourceStamp
from coordinator.domain.properties.renderables import Interpolate, Renderable, render
from coordinator.domain.results import Result
from notifiers.base import DeliveryError, Notifier
from notifiers.render import MessageContext, expand
from notifiers.webclient import WebClient

log = logging.getLogger(__name__)

EVENTS = ("buildrequest.added", "buildrequest.cancelled", "build.started", "build.finished")
CANCELLED_REQUEST = "Build request cancelled."  # it has no build number to show
DEFAULT_CONTEXT = Interpolate("buildbot/%(prop:buildername)s")  # Buildbot's default
DESCRIPTIONS = {"pending": "Build pending.", "start": "Build #$number started.",
                "end": "Build #$number done: $result_lower."}
REMEMBERED = 10_000  # commits whose last delivered state is remembered (bounded)
Token = str | Renderable | Callable[[], str] | None


class BuildProps:
    """What rendering a context name or a token reads: the build's (or request's) properties,
    with ``buildername``, ``buildnumber`` and the first source stamp's ``branch``, ``revision``,
    ``repository``, ``project`` and ``codebase`` always there, its source stamps, and secrets."""

    def __init__(self, build: Build, secret: Callable[[str], str | None]) -> None:
        self.props = {p.name: p.value for p in build.properties}
        self.props.setdefault("buildername", build.builder)
        if build.number:
            self.props.setdefault("buildnumber", build.number)
        self.stamps = list(build.sourcestamps)
        if self.stamps:  # as a build gets them (a request has no properties of its own yet)
            for attr in ("branch", "revision", "repository", "project", "codebase"):
                self.props.setdefault(attr, getattr(self.stamps[0], attr))
        self._secret = secret

    def get_property(self, name: str, default: Any = None) -> Any:
        return self.props.get(name, default)

    def getProperty(self, name: str, default: Any = None) -> Any:  # noqa: N802 - Buildbot's name
        return self.get_property(name, default)

    def has_property(self, name: str) -> bool:
        return name in self.props

    @property
    def sourcestamps(self) -> Sequence[SourceStamp]:
        return self.stamps

    def get_secret(self, name: str) -> str:
        value = self._secret(name)
        if value is None:
            raise SecretNotFound(name)
        return value


class StatusReporter(Notifier):
    """A commit-status reporter: subclasses say how a state is sent to their service."""

    kind = "status"
    events = EVENTS
    service = ""  # "GitHub", ... (in messages)
    default_base_url = ""

    def __init__(
        self,
        name: str,
        token: Token,
        context: str | Renderable | None,
        baseURL: str | None,  # noqa: N803 - Buildbot's option name
        builders: Sequence[str] | None,
        tags: Sequence[str] | None,
        verbose: bool,
        timeout: float,
        options: dict[str, Any],
    ) -> None:
        super().__init__(name, "all", builders, tags)
        self.token = token
        self.context = DEFAULT_CONTEXT if context is None else context
        self.base_url = (self.default_base_url if baseURL is None else baseURL).rstrip("/")
        self.verbose = verbose
        self.timeout = timeout
        # Buildbot's startDescription / endDescription (and a pendingDescription), as templates
        self.descriptions = {phase: options.pop(f"{phase}Description", default)
                             for phase, default in DESCRIPTIONS.items()}
        if options:
            self.errors.append(f"unknown option(s) {', '.join(map(repr, sorted(options)))}")
        self.client = WebClient()
        self._latest: OrderedDict[str, int] = OrderedDict()
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        if not isinstance(self.base_url, str) or not self.base_url.startswith(("http://", "https://")):
            self.errors.append(f"baseURL must be an http:// or https:// URL, not {baseURL!r}")
        if not (isinstance(timeout, int | float) and timeout > 0):
            self.errors.append(f"timeout must be seconds > 0, not {timeout!r}")
        if not isinstance(self.context, str | Renderable):
            self.errors.append(f"context must be a string or Interpolate(...), not {context!r}")
        for option, text in self.descriptions.items():
            if not isinstance(text, str):
                self.errors.append(f"{option}Description must be a string, not {text!r}")

    # ---------------------------------------------------------------- rendering (when queued)

    def render(self, event: str, builds: list[MessageContext]) -> dict[str, Any] | None:
        ctx = builds[0]
        build = ctx.build
        phase = {"buildrequest.added": "pending", "build.started": "start"}.get(event, "end")
        result = build.result if build.result is not None else Result.SUCCESS
        props = BuildProps(build, self.secret_lookup)
        try:
            context = str(render(self.context, props))
        except (SecretNotFound, LookupError, TypeError, ValueError) as exc:
            log.warning("%s: cannot render the context for %s #%d: %s", self.name, build.builder,
                        build.number, exc)
            return None
        values = ctx.fields()
        description = (CANCELLED_REQUEST if event == "buildrequest.cancelled"
                       else expand(self.descriptions[phase], values))
        sends = []
        for ss in build.sourcestamps or []:
            if not ss.revision:
                continue
            request = self.request(phase, result, ss, context, description, ctx)
            if request is None:
                log.info("%s: %r is not a repository of %s; no status for %s",
                         self.name, ss.repository, self.service, ss.revision[:12])
                continue
            sends.append(request)
        if not sends:
            return None
        state = sends[0]["state"]
        return {"requests": sends, "event_id": ctx.event_id,
                "summary": f"{self.service} {state} {context} @ {sends[0]['sha'][:12]}"}

    def request(
        self, phase: str, result: Result, ss: SourceStamp, context: str, description: str,
        ctx: MessageContext,
    ) -> dict[str, Any] | None:
        """{"method", "url", "body", "state", "sha", "target"} for one commit, or None when
        the source stamp's repository is not one of this service's."""
        raise NotImplementedError

    # ---------------------------------------------------------------- delivery

    async def auth_headers(self) -> dict[str, str]:
        """The Authorization header(s) a request carries (the token read at delivery time)."""
        raise NotImplementedError

    def token_value(self) -> str:
        return self.resolve(self.token)

    def resolve(self, value: Token) -> str:
        """A credential's value at delivery time: a string, Secret("name") (from the
        secretsProviders) or a function's return value."""
        if value is None:
            return ""
        if isinstance(value, Renderable):
            empty = Build(id=0, builder="", number=0, worker="", build_request_id=0, buildset_id=0,
                          started_at=0.0)
            try:
                return str(render(value, BuildProps(empty, self.secret_lookup)))
            except SecretNotFound as exc:
                raise DeliveryError(f"{self.name}: {exc}") from None
        return value() if callable(value) else value

    async def deliver(self, payload: dict[str, Any]) -> None:
        event_id = int(payload.get("event_id", 0))
        for req in payload["requests"]:
            target = req["target"]
            # One delivery at a time per commit and context; the lock lives while it is used.
            lock, users = self._locks.get(target) or (asyncio.Lock(), 0)
            self._locks[target] = (lock, users + 1)
            try:
                async with lock:
                    # >=: a retry after a partial failure does not send again what went out
                    if self._latest.get(target, -1) >= event_id:
                        log.info("%s: %s is not newer than the state already sent to %s; skipped",
                                 self.name, req["state"], target)
                        continue
                    await self.client.send(req["method"], req["url"], body=req["body"],
                                           headers=await self.auth_headers(), timeout=self.timeout)
                    if self.verbose:
                        log.info("%s: %s %s for %s", self.name, req["state"], req["sha"][:12], target)
                    self._remember(target, event_id)
            finally:
                lock, users = self._locks[target]
                if users == 1:
                    del self._locks[target]
                else:
                    self._locks[target] = (lock, users - 1)

    async def aclose(self) -> None:
        await self.client.aclose()

    def _remember(self, target: str, event_id: int) -> None:
        self._latest[target] = max(event_id, self._latest.get(target, -1))
        self._latest.move_to_end(target)
        while len(self._latest) > REMEMBERED:
            self._latest.popitem(last=False)

