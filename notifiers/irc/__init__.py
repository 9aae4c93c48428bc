"""The IRC bot (Buildbot's ``reporters.IRC``): announces builds and answers commands.

``IRC`` is the configuration object and the notifier (announcements travel through the
notification outbox); :class:`~notifiers.irc.bot.IrcBot` is the running bot the coordinator
starts for it.
"""

from notifiers.irc.notifier import IRC

__all__ = ["IRC"]
