"""Notifiers: mail (aiosmtplib), HTTP status push, commit-status reporters and chat webhooks,
delivered in the background.

Dependency rule followed here: ``notifiers`` imports the standard library, ``coordinator.domain``
and itself (plus aiosmtplib and aiohttp for sending) - never SQLAlchemy or grpc; it reaches storage only
through the storage ports it is given (``BuildHistory``, ``LogReads``, ``EventCursor`` and
``Outbox`` in ``coordinator.domain.ports``).
"""

from notifiers.base import DeliveryError, DeliveryRejected, Notifier
from notifiers.chat import DiscordNotifier, MattermostNotifier, SlackNotifier, TeamsNotifier
from notifiers.http_push import HttpStatusPush
from notifiers.mail import MailNotifier
from notifiers.reporters import (
    BitbucketServerStatusPush,
    BitbucketStatusPush,
    GiteaStatusPush,
    GitHubChecksPush,
    GitHubStatusPush,
    GitLabStatusPush,
)

__all__ = [
    "BitbucketServerStatusPush",
    "BitbucketStatusPush",
    "DeliveryError",
    "DeliveryRejected",
    "DiscordNotifier",
    "GitHubChecksPush",
    "GitHubStatusPush",
    "GitLabStatusPush",
    "GiteaStatusPush",
    "HttpStatusPush",
    "MailNotifier",
    "MattermostNotifier",
    "Notifier",
    "SlackNotifier",
    "TeamsNotifier",
]
