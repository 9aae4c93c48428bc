"""What every notifier shares: a name, filters (builders, tags, mode) and config errors.

A notifier is an event filter plus one delivery method (as Buildbot's reporters are): the
:class:`~notifiers.service.NotificationService` asks it whether a build wants a message,
has it render the payload (stored, so delivery survives restarts), and later asks it to
deliver that payload.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from coordinator.domain.results import Result
from notifiers.decide import bad_modes, is_message_needed, normalize_mode
from notifiers.render import MessageContext

_HERE = str(Path(__file__).resolve().parent)


def caller_location() -> tuple[str, int]:
    """File and line of the configuration code that created the notifier (for config errors)."""
    frame = inspect.currentframe()
    try:
        while frame is not None and frame.f_code.co_filename.startswith((_HERE, "<")):
            frame = frame.f_back
        return ("<unknown>", 0) if frame is None else (frame.f_code.co_filename, frame.f_lineno)
    finally:
        del frame


class DeliveryError(Exception):
    """A delivery attempt failed; the message says why (kept as the notification's last_error)."""

    retryable = True  # the service retries it with backoff (read by NotificationService.deliver)


class DeliveryRejected(DeliveryError):
    """The service refused the message itself (an HTTP 4xx): sending it again cannot help, so
    the notification is recorded failed at once, with the service's message."""

    retryable = False


def no_secrets(_name: str) -> str | None:
    """A notifier's secret lookup until the service gives it the configured secretsProviders."""
    return None


class Notifier:
    kind = ""  # "mail" / "http": the kind of the notifications it stores
    #: events it reacts to: "build.started", "build.finished", "buildset.finished"
    events: tuple[str, ...] = ("build.finished",)

    def __init__(
        self,
        name: str,
        mode: str | Iterable[str],
        builders: Sequence[str] | None,
        tags: Sequence[str] | None,
    ) -> None:
        self.defined_at = caller_location()
        self.name = name
        self.mode = normalize_mode(mode)
        self.builders = None if builders is None else list(builders)
        self.tags = None if tags is None else list(tags)
        self.errors: list[str] = []
        # Secret("name") values: the configured secretsProviders, set by the service.
        self.secret_lookup: Callable[[str], str | None] = no_secrets
        if not isinstance(name, str) or not name.strip():
            self.errors.append("a notifier needs a non-empty name")
        for m in bad_modes(self.mode):
            self.errors.append(f"unknown mode {m!r}; use some of all, failing, passing, problem, "
                               "change, warnings, exception, cancelled")

    def wants_builder(self, builder: str, builder_tags: Sequence[str]) -> bool:
        if self.builders is not None and builder not in self.builders:
            return False
        if self.tags is not None and not set(self.tags) & set(builder_tags):
            return False
        return True

    def wants_result(self, result: Result, previous: Result | None) -> bool:
        return is_message_needed(self.mode, result, previous)

    def render(self, event: str, builds: list[MessageContext]) -> dict[str, Any] | None:
        """The stored payload for `event` about `builds` (one, or a buildset's); None: nothing."""
        raise NotImplementedError

    async def deliver(self, payload: dict[str, Any]) -> None:
        """Send a rendered payload once; raise DeliveryError (or any error) to be retried."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release what deliveries kept open (connections); the service calls it when it stops."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"
