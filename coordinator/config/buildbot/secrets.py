"""Buildbot's ``secrets`` plugin namespace: ``secrets.SecretInAFile(dirname=...)``."""

from __future__ import annotations

from typing import Any

from coordinator.config.buildbot.adapt import adapter, missing
from coordinator.config.secrets import SecretInAFile as _SecretInAFile

SecretInAFile = adapter("secrets.SecretInAFile", _SecretInAFile)


def __getattr__(name: str) -> Any:  # HashiCorpVaultKvSecretProvider, SecretInPass, ...
    return missing("secrets", name, "Gantry reads secrets from files: use secrets.SecretInAFile(dirname)")
