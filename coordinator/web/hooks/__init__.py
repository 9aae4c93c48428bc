"""Webhook dialects (one module each) and the receiver that stores what a delivery asks for."""

from coordinator.web.hooks.base import Dialect, HookError, Parsed
from coordinator.web.hooks.bitbucket import BitbucketCloudHook, BitbucketServerHook
from coordinator.web.hooks.gitea import GiteaHook
from coordinator.web.hooks.github import GitHubHook
from coordinator.web.hooks.gitlab import GitLabHook

DIALECTS: dict[str, type[Dialect]] = {
    "github": GitHubHook, "gitlab": GitLabHook, "gitea": GiteaHook,
    "bitbucketcloud": BitbucketCloudHook, "bitbucketserver": BitbucketServerHook,
}

__all__ = ["BitbucketCloudHook", "BitbucketServerHook",
           "DIALECTS", "Dialect", "GitHubHook", "GitLabHook", "GiteaHook", "HookError", "Parsed"]
