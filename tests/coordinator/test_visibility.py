"""What a reader scoped to some builders may see, decided once per call (Authz.read_scope) and
applied by the read side: listings, lookups that say what exists, and events."""

from __future__ import annotations

import pytest

from coordinator.domain.auth import actions, visibility
from coordinator.domain.auth.authz import Allow, Authz, RolesFromGroups
from coordinator.domain.auth.identity import ANONYMOUS, Identity
from coordinator.domain.builds.builders import Builder
from coordinator.domain.builds.lookup import find_builder
from coordinator.domain.errors import NotFound
from coordinator.domain.events import Event, EventFilter

TAGS = {"app": ["web"], "api": ["web"], "secret": ["ops"], "linux-1": []}
AUTHZ = Authz(roles=[RolesFromGroups()], rules=[
    Allow(actions.READ, roles=["web"], tags=["web"]),
    Allow(actions.READ, roles=["linux"], builders=["linux-*"]),
    Allow(actions.READ, roles=["viewer"]),
    Allow(actions.FORCE, roles=["web"]),  # unscoped, but not read: no effect on what it sees
])


def scope(*groups: str) -> visibility.Visibility | None:
    return AUTHZ.read_scope(Identity("u", frozenset(groups), "token"), lambda b: TAGS.get(b, ()))


def test_only_readers_with_scoped_rules_alone_get_a_visibility() -> None:
    assert scope("viewer") is None and scope("viewer", "web") is None  # an unscoped rule: everything
    assert AUTHZ.read_scope(ANONYMOUS, lambda b: ()) is None  # anonymous: decide() refuses or allows all
    web = scope("web")
    assert web is not None and web.among(TAGS) == {"app", "api"}
    both = scope("web", "linux")
    assert both is not None and both.among(TAGS) == {"app", "api", "linux-1"}


def test_every_read_passes_for_a_scoped_reader_but_not_a_scoped_control_action() -> None:
    who = Identity("u", frozenset({"linux"}), "token")
    assert AUTHZ.decide(who, actions.READ).allowed
    assert AUTHZ.decide(who, actions.READ, ["app"]).allowed  # hidden by its visibility, not refused
    assert not AUTHZ.decide(Identity("u", frozenset(), "token"), actions.READ, ["app"]).allowed  # no read rule
    stop = Authz(rules=[Allow(actions.STOP, builders=["linux-*"])])
    assert "name the builder" in stop.decide(who, actions.STOP).reason


def test_lookups_treat_a_hidden_builder_as_missing_and_name_only_visible_ones() -> None:
    builders = {n: Builder(n, workers=["w"], steps=[]) for n in TAGS}
    visibility.set_current(scope("web"))
    try:
        with pytest.raises(NotFound) as hidden:
            find_builder(builders, "secret")
        with pytest.raises(NotFound) as missing:
            find_builder(builders, "nope")
        assert str(hidden.value).replace("secret", "X") == str(missing.value).replace("nope", "X")
        assert "(configured builders: api, app)" in str(missing.value)
        assert find_builder(builders, "app").name == "app"
    finally:
        visibility.set_current(None)


def test_events_of_hidden_builders_do_not_match_and_buildsets_lose_their_names() -> None:
    flt = EventFilter().narrowed(scope("web"))
    assert flt.matches(Event("build.started", 0.0, builder="app"))
    assert not flt.matches(Event("build.started", 0.0, builder="secret"))
    assert flt.matches(Event("worker.connected", 0.0, worker="w"))  # not about a builder
    mixed = Event("buildset.added", 0.0, buildset_id=1, details={"builders": ["secret", "app"], "reason": "r"})
    assert flt.matches(mixed) and flt.shown(mixed).details == {"builders": ["app"], "reason": "r"}
    assert not flt.matches(Event("buildset.added", 0.0, buildset_id=2, details={"builders": ["secret"]}))
    assert EventFilter().narrowed(None) == EventFilter()
