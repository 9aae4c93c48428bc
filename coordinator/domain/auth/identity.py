"""Who is asking: a user name, its groups, and how it proved it (token, certificate, ...)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Identity:
    user: str
    groups: frozenset[str] = field(default_factory=frozenset)
    via: str = ""  # "token", "certificate", "proxy", "session", "" (anonymous)

    @property
    def anonymous(self) -> bool:
        return not self.user

    def describe(self) -> str:
        return "anonymous" if self.anonymous else f"{self.user} ({self.via})" if self.via else self.user


ANONYMOUS = Identity("")
