"""Commit-status reporters: GitHub (statuses and check runs), GitLab, Gitea/Forgejo,
Bitbucket Cloud and Bitbucket Server - each an event filter plus one HTTP request per state."""

from notifiers.reporters.base import StatusReporter
from notifiers.reporters.bitbucket import BitbucketServerStatusPush, BitbucketStatusPush
from notifiers.reporters.gitea import GiteaStatusPush
from notifiers.reporters.github import GitHubChecksPush, GitHubStatusPush
from notifiers.reporters.gitlab import GitLabStatusPush

__all__ = [
    "BitbucketServerStatusPush",
    "BitbucketStatusPush",
    "GitHubChecksPush",
    "GitHubStatusPush",
    "GitLabStatusPush",
    "GiteaStatusPush",
    "StatusReporter",
]
