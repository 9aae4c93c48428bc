"""Authorization in Buildbot's shape: role matchers give an identity its roles, rules allow an
action to roles, optionally only on some builders (by name pattern or tag).

    Authz(
        roles=[RolesFromUsers(["alice"], roles=["admin"]), RolesFromGroups(prefix="ci-")],
        rules=[Allow("read", roles=["*"]),
               Allow(["force", "stop", "rebuild"], roles=["developer"], builders=["linux-*"]),
               Allow(actions.ALL, roles=["admin"])],
        anonymous_read=False,
    )

Deny unless a rule allows. A scoped rule (builders=/tags=) allows a request that names its
builder(s). For `read` it allows every read, listings included: the read side then shows only
the builders its rules cover and answers for any other as for a builder that does not exist
(`read_scope`, coordinator/domain/auth/visibility.py). Other actions need an unscoped rule when
they name no builder. A refusal reads the same whether the builder exists or not.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from coordinator.domain.auth import actions
from coordinator.domain.auth.identity import Identity
from coordinator.domain.auth.visibility import Visibility
from coordinator.domain.location import caller_location

ANY_ROLE = "*"  # any authenticated identity


class RoleMatcher:
    def roles_for(self, who: Identity) -> set[str]:
        raise NotImplementedError


@dataclass
class RolesFromUsers(RoleMatcher):
    """These users get these roles (Buildbot's RolesFromUsername)."""

    users: Sequence[str]
    roles: Sequence[str]

    def roles_for(self, who: Identity) -> set[str]:
        return set(self.roles) if who.user in self.users else set()


@dataclass
class RolesFromGroups(RoleMatcher):
    """Each group starting with `prefix` is a role named by the rest (Buildbot's RolesFromGroups)."""

    prefix: str = ""

    def roles_for(self, who: Identity) -> set[str]:
        return {g[len(self.prefix):] for g in who.groups if g.startswith(self.prefix) and len(g) > len(self.prefix)}


@dataclass
class Allow:
    """Allow `actions` (one name or several) to identities holding one of `roles`, on every
    builder or only on those matching `builders` (fnmatch patterns) or carrying one of `tags`."""

    actions: str | Sequence[str]
    roles: Sequence[str] = (ANY_ROLE,)
    builders: Sequence[str] = ()
    tags: Sequence[str] = ()
    defined_at: tuple[str, int] = field(default=("<unknown>", 0), compare=False)

    def __post_init__(self) -> None:
        self.defined_at = caller_location(3)
        if isinstance(self.actions, str):
            self.actions = (self.actions,)

    @property
    def scoped(self) -> bool:
        return bool(self.builders or self.tags)

    def covers(self, builder: str, tags: Iterable[str]) -> bool:
        if not self.scoped:
            return True
        return any(fnmatch.fnmatchcase(builder, p) for p in self.builders) or bool(set(self.tags) & set(tags))

    def problems(self) -> list[str]:
        unknown = [a for a in self.actions if a not in actions.ALL]
        return [f"Allow: unknown action {a!r}; known: {', '.join(actions.ALL)}" for a in unknown]


@dataclass(frozen=True)
class Decision:
    allowed: bool
    # Why not, in words a user can act on (never whether a builder exists).
    reason: str = ""


class Authz:
    def __init__(
        self,
        roles: Sequence[RoleMatcher] = (),
        rules: Sequence[Allow] = (),
        anonymous_read: bool = False,
    ) -> None:
        self.role_matchers = list(roles)
        self.rules = list(rules)
        self.anonymous_read = anonymous_read
        self.defined_at = caller_location()

    @classmethod
    def everyone_authenticated(cls, anonymous_read: bool = False) -> Authz:
        """No authz configured: any authenticated identity may do anything (Buildbot's default
        allows all; anonymous callers get nothing unless anonymous_read)."""
        return cls(rules=[Allow(actions.ALL)], anonymous_read=anonymous_read)

    def problems(self) -> list[str]:
        return [p for rule in self.rules for p in rule.problems()]

    def roles_of(self, who: Identity) -> set[str]:
        if who.anonymous:
            return set()
        roles = {ANY_ROLE}
        for matcher in self.role_matchers:
            roles |= matcher.roles_for(who)
        return roles

    def decide(
        self, who: Identity, action: str, builders: Sequence[str] = (),
        tags_of: Callable[[str], Iterable[str]] = lambda _b: (),
    ) -> Decision:
        """May `who` do `action` on `builders` (empty: not about one builder, or all of them)?"""
        if who.anonymous:
            if action == actions.READ and self.anonymous_read:
                return Decision(True)
            return Decision(False, f"authentication required to {action}")
        roles = self.roles_of(who)
        rules = [r for r in self.rules if action in r.actions and set(r.roles) & roles]
        if rules and action == actions.READ:
            # Narrowed to its builders by read_scope: a hidden one reads as missing (NOT_FOUND,
            # the same words), which says less than a refusal would.
            return Decision(True)
        if not builders:
            if any(not r.scoped for r in rules):
                return Decision(True)
            if rules:
                return Decision(False, f"{who.user} may {action} only on some builders: name the builder")
            return Decision(False, f"{who.user} may not {action}")
        for b in builders:
            tags = list(tags_of(b))
            if not any(r.covers(b, tags) for r in rules):
                return Decision(False, f"{who.user} may not {action} on builder {b!r}")
        return Decision(True)

    def read_scope(self, who: Identity, tags_of: Callable[[str], Iterable[str]]) -> Visibility | None:
        """The builders `who` may read when its read rules are all scoped; None when it may read
        every builder (an unscoped rule, or anonymous read) or none (decide refuses it)."""
        if who.anonymous:
            return None
        roles = self.roles_of(who)
        rules = [r for r in self.rules if actions.READ in r.actions and set(r.roles) & roles]
        if not rules or any(not r.scoped for r in rules):
            return None
        return Visibility(rules, tags_of)
