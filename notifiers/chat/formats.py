"""The incoming-webhook documents of Slack, Discord, Mattermost and Microsoft Teams.

* Slack - https://api.slack.com/messaging/webhooks : ``{"text", "attachments"}``; answers
  200 ``ok``, or 400/403/404/410 with a reason (``invalid_payload``, ``channel_is_archived``).
* Discord - https://discord.com/developers/docs/resources/webhook#execute-webhook :
  ``{"content" (at most 2000 characters), "username", "embeds"}``; answers 204; 429 when
  rate limited (retried).
* Mattermost - https://developers.mattermost.com/integrate/webhooks/incoming/ :
  ``{"text", "username", "channel", "attachments"}`` (Slack-compatible); answers 200 ``ok``.
* Microsoft Teams - https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using
  and Power Automate's "post to a channel when a webhook request is received": a ``message``
  with an Adaptive Card attachment (what both the Workflows webhooks and the older connectors
  accept).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from coordinator.domain.results import Result
from notifiers.chat.base import COLOURS, DEFAULT_DETAILS, DEFAULT_MESSAGE, ChatNotifier, WebhookUrl, code_block
from notifiers.decide import DEFAULT_MODE
from notifiers.render import MessageContext

DISCORD_CONTENT_LIMIT = 2000
DISCORD_EMBED_LIMIT = 4096
SLACK_TEXT_LIMIT = 3000  # of an attachment's text, kept well below Slack's 40 000


class SlackNotifier(ChatNotifier):
    """``SlackNotifier(webhook_url, mode=..., channel=None, username=None, icon_emoji=None, ...)``."""

    service = "Slack"

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
        channel: str | None = None,
        icon_emoji: str | None = None,
        timeout: float = 10.0,
        name: str | None = None,
    ) -> None:
        super().__init__(webhook_url, mode, builders, tags, message, details, title, username, timeout, name)
        self.channel = channel
        self.icon_emoji = icon_emoji

    def document(self, text: str, details: str, result: Result, ctx: MessageContext) -> dict[str, Any]:
        doc: dict[str, Any] = {"text": text}
        if details:
            doc["attachments"] = [{"color": "#" + COLOURS.get(result, "808080"),
                                   "text": code_block(details[-SLACK_TEXT_LIMIT:]),
                                   "mrkdwn_in": ["text"]}]
        for key, value in (("username", self.username), ("channel", self.channel),
                           ("icon_emoji", self.icon_emoji)):
            if value:
                doc[key] = value
        return doc


class MattermostNotifier(SlackNotifier):
    """``MattermostNotifier(webhook_url, mode=..., channel=None, username=None, ...)``."""

    service = "Mattermost"


class DiscordNotifier(ChatNotifier):
    """``DiscordNotifier(webhook_url, mode=..., username=None, ...)``."""

    service = "Discord"

    def document(self, text: str, details: str, result: Result, ctx: MessageContext) -> dict[str, Any]:
        doc: dict[str, Any] = {"content": text[:DISCORD_CONTENT_LIMIT]}
        if details:
            doc["embeds"] = [{"description": code_block(details[-(DISCORD_EMBED_LIMIT - 16):]),
                              "color": int(COLOURS.get(result, "808080"), 16)}]
            if ctx.url:
                doc["embeds"][0]["url"] = ctx.url
        if self.username:
            doc["username"] = self.username
        return doc


class TeamsNotifier(ChatNotifier):
    """``TeamsNotifier(webhook_url, mode=..., ...)``: an Adaptive Card."""

    service = "Teams"

    def document(self, text: str, details: str, result: Result, ctx: MessageContext) -> dict[str, Any]:
        body: list[dict[str, Any]] = [{"type": "TextBlock", "text": text, "wrap": True, "weight": "Bolder",
                                       "color": "Good" if result == Result.SUCCESS else "Attention"}]
        if details:
            body.append({"type": "TextBlock", "text": details, "wrap": True, "fontType": "Monospace"})
        card: dict[str, Any] = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                                "type": "AdaptiveCard", "version": "1.4", "body": body}
        if ctx.url:
            card["actions"] = [{"type": "Action.OpenUrl", "title": "Open the build", "url": ctx.url}]
        return {"type": "message", "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}]}
