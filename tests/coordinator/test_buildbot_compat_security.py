"""The Buildbot layer's web auth, authz and build cancellers: Buildbot's spellings build Gantry's
Auth, Authz and cancellers, never allowing or cancelling more than Buildbot would, and what does
not carry over is reported at its line."""

from __future__ import annotations

import fnmatch
import random
from pathlib import Path
from typing import Any

import pytest

from coordinator.config.buildbot import util
from coordinator.config.buildbot.log import recording
from coordinator.config.buildbot.webauth import web_security
from coordinator.config.loader import ConfigError, load_config_noted
from coordinator.domain.auth import actions as a
from coordinator.domain.auth.identity import ANONYMOUS, Identity
from coordinator.domain.scheduling.cancellers import FailingBuildsetCanceller, OldBuildCanceller
from coordinator.passwords import verify_password
from tests.coordinator.test_buildbot_compat import FIXTURES, master_cfg

HEAD = """\
from buildbot.plugins import *
c = BuildmasterConfig = {}
c['workers'] = [worker.Worker("w", "pass")]
c['builders'] = [util.BuilderConfig(name=n, workernames=["w"],
                                    factory=util.BuildFactory([steps.ShellCommand(command="true")]))
                 for n in ("lint", "test", "docs")]
"""
RULES = HEAD + """\
c['www'] = dict(port=8010, auth=util.RemoteUserAuth(header="X-Remote-User"))
c['www']['authz'] = util.Authz(
    allowRules=[
        util.AnyEndpointMatcher(role="admins", defaultDeny=False),
        util.ForceBuildEndpointMatcher(builder="test", role="dev"),
        util.StopBuildEndpointMatcher(role="releasers"),
        util.AnyControlEndpointMatcher(role="admins"),
    ],
    roleMatchers=[util.RolesFromGroups(groupPrefix="ci-"),
                  util.RolesFromUsername(roles=["releasers"], usernames=["rel"])])
"""


def notes_of(exc: ConfigError, kind: str) -> list[Any]:
    assert exc.migration is not None
    return exc.migration.log.of_kind(kind)


def who(user: str, *groups: str) -> Identity:
    return Identity(user, frozenset(groups), "proxy")


def test_buildbots_ordered_rules_become_allows_with_the_same_decisions(tmp_path: Path) -> None:
    cfg, migration = load_config_noted(master_cfg(tmp_path, RULES))
    assert cfg.auth.proxy_header == "X-Remote-User"
    authz = cfg.authz
    admin, dev, rel, nobody = who("ann", "ci-admins"), who("dan", "ci-dev"), who("rel"), who("joe")
    # (identity, action, builder) -> what Buildbot's Authz.assertUserAllowed answers
    cases = [
        (admin, a.FORCE, "lint", True), (admin, a.RECONFIG, "", True),
        (dev, a.FORCE, "test", True), (dev, a.FORCE, "lint", False),  # AnyControl denies first
        (rel, a.STOP, "lint", True), (dev, a.STOP, "lint", False),
        (nobody, a.READ, "", True), (nobody, a.REBUILD, "docs", False),
        (ANONYMOUS, a.READ, "", True), (ANONYMOUS, a.FORCE, "test", False),
    ]
    got = [(w.user, act, b, authz.decide(w, act, [b] if b else []).allowed) for w, act, b, _ in cases]
    assert got == [(w.user, act, b, allowed) for w, act, b, allowed in cases]
    assert not migration.log.of_kind("not supported")
    # A proxy's user@REALM is not cut down to the user: a different meaning, at its line.
    assert any(e.line == 7 and "headerRegex" in e.text for e in migration.log.of_kind("different meaning"))


def test_a_rule_after_a_scoped_denying_rule_applies_to_the_other_builders_by_name(tmp_path: Path) -> None:
    text = HEAD + """\
c['www'] = dict(auth=util.UserPasswordAuth({"ann": "pw", "dan": "pw2"}))
c['www']['authz'] = util.Authz(
    allowRules=[util.ForceBuildEndpointMatcher(builder="l*", role="dev"),
                util.AnyControlEndpointMatcher(role="admins")],
    roleMatchers=[util.RolesFromUsername(roles=["admins"], usernames=["ann"]),
                  util.RolesFromUsername(roles=["dev"], usernames=["dan"])])
"""
    cfg, migration = load_config_noted(master_cfg(tmp_path, text))
    # Buildbot: dev forces 'lint' (l*), admins the rest but not 'lint' (the first rule denies).
    allowed = {(u, b) for u in ("ann", "dan") for b in ("lint", "test", "docs")
               if cfg.authz.decide(who(u), a.FORCE, [b]).allowed}
    assert allowed == {("dan", "lint"), ("ann", "test"), ("ann", "docs")}
    assert sorted((tuple(r.actions), tuple(r.builders)) for r in cfg.authz.rules if "admins" in r.roles) == [
        ((a.FORCE,), ("test", "docs")), (tuple(x for x in a.ALL if x not in (a.READ, a.FORCE)), ())]
    assert not migration.log.of_kind("not supported")


def test_the_tours_login_checks_the_tutorials_password(tmp_path: Path) -> None:
    cfg, _ = load_config_noted(master_cfg(tmp_path, (FIXTURES / "tour.cfg").read_text()))
    stored = cfg.auth.users["Alice"]
    assert "Password1" not in stored and verify_password(stored, "Password1")
    assert not verify_password(stored, "password1")
    assert cfg.authz.decide(who("Alice"), a.FORCE, ["runtests"]).allowed
    assert not cfg.authz.decide(who("bob"), a.READ).allowed  # AnyEndpointMatcher denies the rest
    assert not cfg.authz.anonymous_read


@pytest.mark.parametrize(("statement", "line_text"), [
    ("c['www'] = dict(auth=util.GitHubAuth('id', 'secret'))", "util.GitHubAuth: run an OAuth2 proxy"),
    ("c['www'] = dict(auth=util.HTPasswdAuth('.htpasswd'))", "util.HTPasswdAuth: Gantry checks argon2"),
    ("c['www'] = dict(auth=util.UserPasswordAuth([('a', 'b')]), authz=util.Authz(\n"
     "    allowRules=[util.AnyEndpointMatcher(role='x')], roleMatchers=[util.RolesFromEmails(x=['a@b'])]))",
     "util.RolesFromEmails: Gantry identities carry no e-mail"),
])
def test_what_has_no_counterpart_is_reported_at_its_line(tmp_path: Path, statement: str, line_text: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config_noted(master_cfg(tmp_path, HEAD + statement + "\n"))
    notes = notes_of(exc.value, "not supported")
    assert [(e.line, e.text.startswith(line_text)) for e in notes] == [(notes[0].line, True)]
    assert notes[0].line == (7 if "Emails" not in statement else 8)


def test_an_authz_without_a_login_still_applies(tmp_path: Path) -> None:
    text = HEAD + "c['www'] = dict(authz=util.Authz(allowRules=[util.AnyControlEndpointMatcher(role='x')]))\n"
    cfg, _ = load_config_noted(master_cfg(tmp_path, text))
    assert cfg.auth is not None and cfg.auth.tokens  # else Gantry would apply no authz at all
    assert cfg.authz.anonymous_read and not cfg.authz.decide(who("joe"), a.FORCE, ["lint"]).allowed


def test_buildbots_cancellers_become_gantrys_one_per_filter(tmp_path: Path) -> None:
    text = HEAD + """\
c['services'] = [
    util.OldBuildCanceller("superseded", filters=[
        (["test", "lint"], util.SourceStampFilter(branch_eq=["main", None])),
        (["docs"], util.SourceStampFilter()),
    ]),
    util.FailingBuildsetCanceller("fail-fast", filters=[
        (["lint"], ["test"], util.SourceStampFilter(branch_eq="main"))]),
]
"""
    cfg, migration = load_config_noted(master_cfg(tmp_path, text))
    assert cfg.notifiers == []
    got = [(type(c), c.name, c.builders, c.branches) for c in cfg.cancellers]
    assert got == [
        (OldBuildCanceller, "superseded", ["test", "lint"], ["main", "trunk"]),
        (OldBuildCanceller, "superseded-2", ["docs"], None),
        (FailingBuildsetCanceller, "fail-fast", ["lint"], ["main"]),
    ]
    assert cfg.cancellers[2].cancel == ["test"]
    assert [e.line for e in migration.log.of_kind("different meaning") if "2 filters" in e.text] == [8]


def test_a_canceller_filter_gantry_lacks_is_dropped_not_widened(tmp_path: Path) -> None:
    text = HEAD + """\
c['services'] = [util.OldBuildCanceller("superseded", filters=[
    (["test"], util.SourceStampFilter(branch_eq="main")),
    (["lint"], util.SourceStampFilter(repository_re="app")),
])]
"""
    with pytest.raises(ConfigError) as exc:
        load_config_noted(master_cfg(tmp_path, text))
    notes = notes_of(exc.value, "not supported")
    assert [(e.line, e.text.split(":")[0]) for e in notes] == [(9, "util.SourceStampFilter(repository_re=...)")]


# --- The mapping against Buildbot's own walk of allowRules, on drawn configurations ---------------

KINDS = {  # matcher -> (Gantry actions it governs, takes builder=)
    "AnyEndpointMatcher": (a.ALL, False),
    "AnyControlEndpointMatcher": (tuple(x for x in a.ALL if x != a.READ), False),
    "ForceBuildEndpointMatcher": ((a.FORCE,), True),
    "StopBuildEndpointMatcher": ((a.STOP,), True),
    "RebuildBuildEndpointMatcher": ((a.REBUILD,), True),
}
ROLES = ("admins", "dev", "ops")
USERS = {"u-admins": {"admins"}, "u-dev": {"dev"}, "u-ops": {"ops"}, "u-dev-ops": {"dev", "ops"}, "u-none": set()}
BUILDERS = ("lint", "linux", "docs")


def buildbot_allows(rules: list[tuple[str, str, str | None, bool]], roles: set[str], action: str, builder: str) -> bool:
    """Buildbot's Authz.assertUserAllowed (master/buildbot/www/authz/authz.py): the first
    matching rule allows a matching role, else denies if defaultDeny, else the walk goes on."""
    for kind, pattern, scope, deny in rules:
        acts, _ = KINDS[kind]
        if action not in acts or (scope is not None and not fnmatch.fnmatch(builder, scope)):
            continue
        if any(fnmatch.fnmatch(r, pattern) for r in roles):
            return True
        if deny:
            return False
    return True


def test_a_mapped_authz_decides_as_buildbots_walk_of_its_rules() -> None:
    rng = random.Random(15)
    for _ in range(300):
        rules = []
        for _ in range(rng.randint(1, 4)):
            kind = rng.choice(list(KINDS))
            scope = rng.choice([None, "lint", "li*", "docs"]) if KINDS[kind][1] else None
            rules.append((kind, rng.choice([*ROLES, "*", "d*"]), scope, rng.random() < 0.7))
        written = [getattr(util, kind)(**({"builder": scope} if scope else {}), role=role, defaultDeny=deny)
                   for kind, role, scope, deny in rules]
        matchers = [util.RolesFromUsername(roles=sorted(r), usernames=[u]) for u, r in USERS.items() if r]
        with recording() as log:
            _, authz = web_security(None, util.Authz(allowRules=written, roleMatchers=matchers),
                                    {"auth": ("master.cfg", 1), "authz": ("master.cfg", 1)}, BUILDERS)
        assert authz is not None
        assert not log.of_kind("not supported")
        for user, roles in USERS.items():
            for action in (a.READ, a.FORCE, a.STOP, a.REBUILD, a.CANCEL, a.SCHEDULER):
                for builder in BUILDERS:
                    gantry = authz.decide(Identity(user, via="token"), action, [builder]).allowed
                    assert gantry == buildbot_allows(rules, roles, action, builder), (rules, user, action, builder)


def test_positional_arguments_and_a_bad_builder_are_read_as_buildbot_reads_them() -> None:
    with recording() as log:
        _, authz = web_security(None, util.Authz(
            [util.AnyEndpointMatcher("admins", False),  # role, defaultDeny
             util.ForceBuildEndpointMatcher("lint", role="dev"),  # builder first
             util.StopBuildEndpointMatcher(builder=["lint", "docs"], role="dev")],
            [util.RolesFromUsername(["admins"], ["ann"]), util.RolesFromUsername(["dev"], ["dan"])],
        ), {"auth": ("master.cfg", 1), "authz": ("master.cfg", 1)}, ["lint", "docs"])
    assert authz is not None
    dan, ann = Identity("dan", via="token"), Identity("ann", via="token")
    assert authz.decide(dan, a.FORCE, ["lint"]).allowed and not authz.decide(who("joe"), a.FORCE, ["lint"]).allowed
    assert authz.decide(dan, a.FORCE, ["docs"]).allowed  # no rule decides there: Buildbot lets everyone
    assert not authz.decide(dan, a.STOP, ["lint"]).allowed  # its rule allows nobody, and says so
    assert authz.decide(ann, a.RECONFIG).allowed  # an "any endpoint" rule governs reconfig too
    assert [e.text.split(":")[0] for e in log.entries if e.kind == "not supported"] == [
        "util.StopBuildEndpointMatcher(builder=['lint', 'docs'])"]


def test_a_builder_name_with_pattern_characters_is_allowed_by_its_name_only() -> None:
    with recording():
        _, authz = web_security(None, util.Authz(
            [util.ForceBuildEndpointMatcher(builder="lint", role="dev"), util.AnyControlEndpointMatcher(role="admins")],
            [util.RolesFromUsername(["admins"], ["ann"])],
        ), {"auth": ("master.cfg", 1), "authz": ("master.cfg", 1)}, ["lint", "py[3]"])
    assert authz is not None
    ann = Identity("ann", via="token")
    assert authz.decide(ann, a.FORCE, ["py[3]"]).allowed
    assert not authz.decide(ann, a.FORCE, ["py3"]).allowed  # "py[3]" is not a pattern here
    assert not authz.decide(ann, a.FORCE, ["lint"]).allowed
