"""What a configuration file imports: ``from coordinator.config import ...``.

A configuration is a Python file that assigns ``config = MasterConfig(...)`` (or, for Buildbot
habits, a ``BuildmasterConfig`` dict with the keys ``workers``, ``builders``, ``schedulers``).
"""

from coordinator.config.objects import MasterConfig, Worker
from coordinator.config.pipeline import Pipeline
from coordinator.config.secrets import SecretInAFile
from coordinator.config.security import TLS, Auth
from coordinator.domain.auth import actions
from coordinator.domain.auth.authz import Allow, Authz, RolesFromGroups, RolesFromUsers
from coordinator.domain.builds.builders import Builder
from coordinator.domain.builds.locks import MasterLock, WorkerLock
from coordinator.domain.builds.retention import Retention
from coordinator.domain.changes.filters import ChangeFilter
from coordinator.domain.changes.hgpoller import HgPoller
from coordinator.domain.changes.sources import GitPoller
from coordinator.domain.changes.svnpoller import SVNPoller, split_file_alwaystrunk, split_file_branches
from coordinator.domain.properties.renderables import (
    Interpolate,
    Property,
    Secret,
    Transform,
    render,
    renderer,
)
from coordinator.domain.results import Result
from coordinator.domain.scheduling.cancellers import FailingBuildsetCanceller, OldBuildCanceller
from coordinator.domain.scheduling.force import (
    BooleanParameter,
    ChoiceStringParameter,
    CodebaseParameter,
    FixedParameter,
    ForceScheduler,
    IntParameter,
    StringParameter,
    TextParameter,
)
from coordinator.domain.scheduling.matrix import Matrix
from coordinator.domain.scheduling.schedulers import AnyBranchScheduler, SingleBranchScheduler
from coordinator.domain.scheduling.timed import Nightly, Periodic
from coordinator.domain.scheduling.triggerable import Dependent, Triggerable
from coordinator.domain.scheduling.try_ import TryScheduler
from coordinator.domain.steps.base import BuildStep, ShellCommand
from coordinator.domain.steps.junit import Test
from coordinator.domain.steps.master import MasterShellCommand
from coordinator.domain.steps.mercurial import Mercurial
from coordinator.domain.steps.shell import (
    Compile,
    SetPropertyFromCommand,
    ShellArg,
    ShellSequence,
    WarningCountingShellCommand,
)
from coordinator.domain.steps.source import Git
from coordinator.domain.steps.svn import SVN
from coordinator.domain.steps.transfer import DirectoryUpload, FileDownload, FileUpload
from coordinator.domain.steps.trigger import Trigger
from notifiers import HttpStatusPush, MailNotifier
from notifiers.chat import DiscordNotifier, MattermostNotifier, SlackNotifier, TeamsNotifier
from notifiers.irc import IRC
from notifiers.reporters import (
    BitbucketServerStatusPush,
    BitbucketStatusPush,
    GiteaStatusPush,
    GitHubChecksPush,
    GitHubStatusPush,
    GitLabStatusPush,
)

SUCCESS, WARNINGS, FAILURE, SKIPPED, EXCEPTION, RETRY, CANCELLED = list(Result)

__all__ = [
    "BitbucketServerStatusPush",
    "BitbucketStatusPush",
    "DiscordNotifier",
    "GitHubChecksPush",
    "GitHubStatusPush",
    "GitLabStatusPush",
    "GiteaStatusPush",
    "MattermostNotifier",
    "SlackNotifier",
    "TeamsNotifier",
    "TLS",
    "Allow",
    "Auth",
    "Authz",
    "RolesFromGroups",
    "RolesFromUsers",
    "actions",
    "BooleanParameter",
    "ChoiceStringParameter",
    "FixedParameter",
    "IntParameter",
    "CodebaseParameter",
    "StringParameter",
    "TextParameter",
    "Builder",
    "BuildStep",
    "Compile",
    "DirectoryUpload",
    "FileDownload",
    "FileUpload",
    "Dependent",
    "FailingBuildsetCanceller",
    "OldBuildCanceller",
    "ForceScheduler",
    "GitPoller",
    "HgPoller",
    "SVNPoller",
    "split_file_alwaystrunk",
    "split_file_branches",
    "HttpStatusPush",
    "IRC",
    "Interpolate",
    "MailNotifier",
    "MasterConfig",
    "MasterShellCommand",
    "Pipeline",
    "Matrix",
    "Git",
    "Mercurial",
    "SVN",
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
    "TryScheduler",
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
