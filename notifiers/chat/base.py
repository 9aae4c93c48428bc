"""What the chat webhook notifiers share: MailNotifier's filters and modes, a message
template, and one POST of the rendered document to the incoming-webhook URL.

The webhook URL is a credential (whoever has it can post to the channel): it may be given as
``Secret("name")`` and is read when the message is sent, never stored with the message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from coordinator.domain.errors import SecretNotFound
from coordinator.domain.model import Build
from coordinator.domain.properties.renderables import Renderable, render
from coordinator.domain.results import Result
from notifiers.base import DeliveryError, Notifier
from notifiers.decide import DEFAULT_MODE
from notifiers.render import MessageContext, expand
from notifiers.reporters.base import BuildProps
from notifiers.webclient import WebClient

DEFAULT_MESSAGE = "$title: $builder #$number $result_lower - $url"
DEFAULT_DETAILS = "$failing"
# Colours the formats that have one use (hex RGB), by result.
COLOURS = {Result.SUCCESS: "2EB886", Result.WARNINGS: "DAA038", Result.FAILURE: "D50200",
           Result.EXCEPTION: "A000A0", Result.CANCELLED: "808080", Result.SKIPPED: "808080",
           Result.RETRY: "DAA038"}
WebhookUrl = str | Renderable | Callable[[], str]


class ChatNotifier(Notifier):
    """A chat incoming webhook; subclasses turn (message, details) into the service's JSON."""

    kind = "chat"
    service = ""

    def __init__(
        self,
        webhook_url: WebhookUrl,
        mode: str | Iterable[str] = DEFAULT_MODE,
        builders: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        message: str = DEFAULT_MESSAGE,
        details: str = DEFAULT_DETAILS,
        title: str = "Gantry",
        username: str | None = None,
        timeout: float = 10.0,
        name: str | None = None,
    ) -> None:
        super().__init__(name or type(self).__name__, mode, builders, tags)
        self.webhook_url = webhook_url
        self.message = message
        self.details = details
        self.title = title
        self.username = username
        self.timeout = timeout
        self.client = WebClient()
        if isinstance(webhook_url, str):
            parts = urlsplit(webhook_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                self.errors.append("webhook_url must be an http:// or https:// URL "
                                   "(or Secret('name') holding one)")
        elif not isinstance(webhook_url, Renderable) and not callable(webhook_url):
            self.errors.append(f"webhook_url must be a URL or Secret('name'), not {webhook_url!r}")
        for option, text in (("message", message), ("details", details), ("title", title)):
            if not isinstance(text, str):
                self.errors.append(f"{option} must be a template string, not {text!r}")
        if username is not None and not isinstance(username, str):
            self.errors.append(f"username must be a string, not {username!r}")
        if not (isinstance(timeout, int | float) and timeout > 0):
            self.errors.append(f"timeout must be seconds > 0, not {timeout!r}")

    def render(self, event: str, builds: list[MessageContext]) -> dict[str, Any] | None:
        ctx = builds[0]
        values = ctx.fields(self.title)
        text = expand(self.message, values).strip()
        details = expand(self.details, values).strip()
        result = ctx.build.result if ctx.build.result is not None else Result.SUCCESS
        return {"body": self.document(text, details, result, ctx), "summary": f"{self.service}: {text}"}

    def document(self, text: str, details: str, result: Result, ctx: MessageContext) -> dict[str, Any]:
        raise NotImplementedError

    def url(self) -> str:
        value = self.webhook_url
        if isinstance(value, Renderable):
            empty = Build(id=0, builder="", number=0, worker="", build_request_id=0, buildset_id=0,
                          started_at=0.0)
            try:
                return str(render(value, BuildProps(empty, self.secret_lookup)))
            except SecretNotFound as exc:
                raise DeliveryError(f"{self.name}: {exc}") from None
        return value() if callable(value) else value

    async def deliver(self, payload: dict[str, Any]) -> None:
        await self.client.send("POST", self.url(), body=payload["body"], headers={}, timeout=self.timeout)

    async def aclose(self) -> None:
        await self.client.aclose()


def code_block(details: str) -> str:
    """Details (the failing step and its log) as a Markdown code block, or ''."""
    if not details:
        return ""
    return "```\n" + details.replace("```", "'''") + "\n```"
