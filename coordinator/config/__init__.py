"""What a configuration file imports: ``from coordinator.config import ...``.

A configuration is a Python file that assigns ``config = MasterConfig(...)`` (or, for Buildbot
habits, a ``BuildmasterConfig`` dict with the keys ``workers``, ``builders``, ``schedulers``).
"""

from coordinator.config.objects import MasterConfig, Worker
from coordinator.config.secrets import SecretInAFile
from coordinator.domain.builds.builders import Builder
from coordinator.domain.builds.locks import MasterLock, WorkerLock
from coordinator.domain.builds.retention import Retention
from coordinator.domain.changes.filters import ChangeFilter
from coordinator.domain.changes.sources import GitPoller
from coordinator.domain.properties.renderables import (
    Interpolate,
    Property,
    Secret,
    Transform,
    render,
    renderer,
)
from coordinator.domain.results import Result
from coordinator.domain.scheduling.force import (
    BooleanParameter,
    ChoiceStringParameter,
    FixedParameter,
    ForceScheduler,
    IntParameter,
    StringParameter,
    TextParameter,
)
from coordinator.domain.scheduling.schedulers import AnyBranchScheduler, SingleBranchScheduler
from coordinator.domain.scheduling.timed import Nightly, Periodic
from coordinator.domain.scheduling.triggerable import Dependent, Triggerable
from coordinator.domain.steps.base import BuildStep, ShellCommand
from coordinator.domain.steps.junit import Test
from coordinator.domain.steps.master import MasterShellCommand
from coordinator.domain.steps.shell import (
    Compile,
    SetPropertyFromCommand,
    ShellArg,
    ShellSequence,
    WarningCountingShellCommand,
)
from coordinator.domain.steps.source import Git
from coordinator.domain.steps.transfer import DirectoryUpload, FileDownload, FileUpload
from coordinator.domain.steps.trigger import Trigger
from notifiers import HttpStatusPush, MailNotifier

SUCCESS, WARNINGS, FAILURE, SKIPPED, EXCEPTION, RETRY, CANCELLED = list(Result)

__all__ = [
    "BooleanParameter",
    "ChoiceStringParameter",
    "FixedParameter",
    "IntParameter",
    "StringParameter",
    "TextParameter",
    "Builder",
    "BuildStep",
    "Compile",
    "DirectoryUpload",
    "FileDownload",
    "FileUpload",
    "Dependent",
    "ForceScheduler",
    "GitPoller",
    "HttpStatusPush",
    "Interpolate",
    "MailNotifier",
    "MasterConfig",
    "MasterShellCommand",
    "Git",
    "Secret",
    "SecretInAFile",
    "Nightly",
    "Periodic",
    "MasterLock",
    "Property",
    "Result",
    "Retention",
    "SetPropertyFromCommand",
    "ShellArg",
    "ShellCommand",
    "ShellSequence",
    "SingleBranchScheduler",
    "Test",
    "AnyBranchScheduler",
    "ChangeFilter",
    "Transform",
    "Trigger",
    "Triggerable",
    "WarningCountingShellCommand",
    "Worker",
    "WorkerLock",
    "render",
    "renderer",
    "SUCCESS",
    "WARNINGS",
    "FAILURE",
    "SKIPPED",
    "EXCEPTION",
    "RETRY",
    "CANCELLED",
]
