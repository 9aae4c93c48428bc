"""Notifiers: mail (aiosmtplib) and HTTP status push, delivered in the background.

Dependency rule followed here: ``notifiers`` imports the standard library, ``coordinator.domain``
and itself (plus aiosmtplib for sending) - never SQLAlchemy or grpc; it reaches storage only
through the storage ports it is given (``BuildHistory``, ``LogReads``, ``EventCursor`` and
``Outbox`` in ``coordinator.domain.ports``).
"""

from notifiers.base import DeliveryError, Notifier
from notifiers.http_push import HttpStatusPush
from notifiers.mail import MailNotifier

__all__ = ["DeliveryError", "HttpStatusPush", "MailNotifier", "Notifier"]
