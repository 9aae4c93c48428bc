"""Expected errors of the domain. The API maps each to one gRPC status code, in one table."""

from __future__ import annotations


class GantryError(Exception):
    """Base of every expected error; its message is shown to a person as is."""


class InvalidArgument(GantryError):
    """The request is malformed; the message says which field and how to fix it."""


class NotFound(GantryError):
    """A named thing (builder, build, step, log, change) does not exist."""


class Unauthenticated(GantryError):
    """Credentials were missing or wrong."""


class PermissionDenied(GantryError):
    """The caller may not do this."""


class FailedPrecondition(GantryError):
    """The request is valid but the system is not in a state to honour it."""


class StepError(GantryError):
    """A step cannot go on for a reason the user can fix (e.g. a missing secret); the step ends
    with an exception and this message in its log, without a traceback."""


class SecretNotFound(StepError):
    def __init__(self, name: str) -> None:
        super().__init__(f"secret {name} not found in any provider")
        self.name = name


class AlreadyScheduled(FailedPrecondition):
    """The changes were already built, or this scheduled time already ran (another coordinator
    or an earlier run got there first)."""


class EventsPruned(FailedPrecondition):
    """A status stream asked to resume after an event that retention (eventHorizon) deleted,
    with others after it: it could not be given what it missed, so it is told instead."""

    def __init__(self, since_id: int, pruned_through: int) -> None:
        super().__init__(
            f"events after #{since_id} are no longer stored: retention (eventHorizon) deleted every "
            f"event up to #{pruned_through}; re-read the state you need, then resume from "
            f"#{pruned_through} (or -1 for new events only)"
        )
        self.since_id = since_id
        self.pruned_through = pruned_through
