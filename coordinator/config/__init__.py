"""What a configuration file imports: ``from coordinator.config import ...``.

A configuration is a Python file that assigns ``config = MasterConfig(...)`` (or, for Buildbot
habits, a ``BuildmasterConfig`` dict with the keys ``workers``, ``builders``, ``schedulers``).
"""

from coordinator.config.objects import MasterConfig, Worker
from coordinator.config.secrets import SecretInAFile
from coordinator.domain.builders import Builder
from coordinator.domain.change_filters import ChangeFilter
from coordinator.domain.change_sources import GitPoller
from coordinator.domain.force import (
    BooleanParameter,
    ChoiceStringParameter,
    FixedParameter,
    ForceScheduler,
    IntParameter,
    StringParameter,
    TextParameter,
)
from coordinator.domain.junit import Test
from coordinator.domain.locks import MasterLock, WorkerLock
from coordinator.domain.master_steps import MasterShellCommand
from coordinator.domain.renderables import (
    Interpolate,
    Property,
    Secret,
    Transform,
    render,
    renderer,
)
from coordinator.domain.results import Result
from coordinator.domain.schedulers import AnyBranchScheduler, SingleBranchScheduler
from coordinator.domain.shell_steps import (
    Compile,
    SetPropertyFromCommand,
    ShellArg,
    ShellSequence,
    WarningCountingShellCommand,
)
from coordinator.domain.source_steps import Git
from coordinator.domain.steps import BuildStep, ShellCommand
from coordinator.domain.timed import Nightly, Periodic
from coordinator.domain.transfer_steps import DirectoryUpload, FileDownload, FileUpload
from coordinator.domain.trigger_step import Trigger
from coordinator.domain.triggerable import Dependent, Triggerable
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
