"""The secrets of one build: looked up in the configured providers when a step renders a
``Secret``, remembered, and hidden wherever the build's state is written."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from coordinator.domain.errors import SecretNotFound
from coordinator.domain.ports import SecretProvider


class BuildSecrets:
    def __init__(self, providers: Sequence[SecretProvider] = ()) -> None:
        self._providers = list(providers)
        self.values: dict[str, str] = {}  # name -> value of every secret rendered so far
        self._longest_first: list[tuple[str, str]] = []

    def get(self, name: str) -> str:
        """The secret's value from the first provider that has it."""
        if name in self.values:
            return self.values[name]
        for provider in self._providers:
            value = provider.get(name)
            if value is not None:
                self.values[name] = value
                # Longest first: a value containing another is hidden whole.
                self._longest_first = sorted(
                    ((n, v) for n, v in self.values.items() if v), key=lambda nv: -len(nv[1])
                )
                return value
        raise SecretNotFound(name)

    def __bool__(self) -> bool:
        return bool(self._longest_first)

    def redact(self, text: str) -> str:
        """`text` with every secret value replaced by ``<secret NAME>``."""
        for name, value in self._longest_first:
            text = text.replace(value, f"<secret {name}>")
        return text

    def redact_bytes(self, data: bytes) -> bytes:
        for name, value in self._longest_first:
            data = data.replace(value.encode(), f"<secret {name}>".encode())
        return data

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
