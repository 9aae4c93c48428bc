"""What a configuration file imports: ``from coordinator.config import ...``.

A configuration is a Python file that assigns ``config = MasterConfig(...)`` (or, for Buildbot
habits, a ``BuildmasterConfig`` dict with the keys ``workers``, ``builders``, ``schedulers``).
"""

from coordinator.config.objects import MasterConfig, Worker
from coordinator.domain.builders import Builder
from coordinator.domain.results import Result
from coordinator.domain.schedulers import ForceScheduler, SingleBranchScheduler
from coordinator.domain.steps import BuildStep, ShellCommand
from notifiers import HttpStatusPush, MailNotifier

SUCCESS, WARNINGS, FAILURE, SKIPPED, EXCEPTION, RETRY, CANCELLED = list(Result)

__all__ = [
    "Builder",
    "BuildStep",
    "ForceScheduler",
    "HttpStatusPush",
    "MailNotifier",
    "MasterConfig",
    "Result",
    "ShellCommand",
    "SingleBranchScheduler",
    "Worker",
    "SUCCESS",
    "WARNINGS",
    "FAILURE",
    "SKIPPED",
    "EXCEPTION",
    "RETRY",
    "CANCELLED",
]
