"""The secrets of one build: looked up in the configured providers when a step renders a
``Secret``, remembered, and hidden wherever the build's state is written."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from coordinator.domain.errors import SecretNotFound
from coordinator.domain.ports import SecretProvider
from coordinator.domain.properties.redaction import Redactor


class BuildSecrets:
    def __init__(self, providers: Sequence[SecretProvider] = ()) -> None:
        self._providers = list(providers)
        self.values: dict[str, str] = {}  # name -> value of every secret rendered so far
        # Every value and its encodings (the worker's engine: see properties/redaction.py).
        self.redactor = Redactor(())

    def get(self, name: str) -> str:
        """The secret's value from the first provider that has it."""
        if name in self.values:
            return self.values[name]
        for provider in self._providers:
            value = provider.get(name)
            if value is not None:
                self.values[name] = value
                self.redactor = Redactor(self.values.items())
                return value
        raise SecretNotFound(name)

    def __bool__(self) -> bool:
        return bool(self.redactor)

    def redact(self, text: str) -> str:
        """`text` with every secret value (in any of its forms) replaced by ``<secret NAME>``."""
        return self.redactor.text(text)

    def redact_bytes(self, data: bytes) -> bytes:
        return self.redactor.whole(data)

    def redact_value(self, value: Any) -> Any:
        """A property value with the secrets hidden in every string inside it."""
        if not self:
            return value
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, list | tuple):
            return type(value)(self.redact_value(v) for v in value)
        if isinstance(value, dict):
            return {self.redact_value(k): self.redact_value(v) for k, v in value.items()}
        return value
