"""Chat incoming webhooks: Slack, Discord, Mattermost and Microsoft Teams, with MailNotifier's
modes and filters and a message template."""

from notifiers.chat.base import ChatNotifier
from notifiers.chat.formats import DiscordNotifier, MattermostNotifier, SlackNotifier, TeamsNotifier

__all__ = ["ChatNotifier", "DiscordNotifier", "MattermostNotifier", "SlackNotifier", "TeamsNotifier"]
