"""Buildbot's ``c['www']['auth']`` and ``c['www']['authz']`` as Gantry's ``Auth`` and ``Authz``.

Buildbot's objects are only recorded where they are written (:class:`Written`); the master
translates the pair once both are known (:func:`web_security`), because the one depends on the
other (an authz without a login still needs Gantry's auth switched on to apply at all).

The rule is: a mapped authz is never wider than Buildbot's. Buildbot walks ``allowRules`` in
order; the first rule matching the request allows when a role of the user matches its role
pattern, else denies when ``defaultDeny`` (the default), else goes on; no rule: allowed.
Gantry denies unless some ``Allow`` allows, so each request is walked as Buildbot would (for
each configured builder where a rule names builders) and the roles it allows become Allows.
What Gantry cannot express (owner roles, e-mail roles, role patterns over group roles) is left
out and reported: narrower, never wider.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from typing import Any

from coordinator.config.buildbot.log import DIFFERENT, IGNORED, SAME, UNSUPPORTED, Call, native, note_at
from coordinator.config.security import Auth
from coordinator.domain.auth import actions as a
from coordinator.domain.auth.authz import ANY_ROLE, Allow, Authz, RolesFromGroups, RolesFromUsers
from coordinator.domain.location import caller_location
from coordinator.passwords import hash_password

# Endpoint matcher -> the Gantry actions its requests are. Buildbot's web authz does not govern
# change submission or try jobs (their own credentials) nor reconfig/tokens/audit (no endpoint):
# only a rule over "any endpoint" grants those, as Buildbot's admins can do anything.
MATCHED = {
    "AnyEndpointMatcher": a.ALL,
    "AnyControlEndpointMatcher": tuple(x for x in a.ALL if x != a.READ),
    "ForceBuildEndpointMatcher": (a.FORCE,),
    "StopBuildEndpointMatcher": (a.STOP,),
    "RebuildBuildEndpointMatcher": (a.REBUILD,),
    "EnableSchedulerEndpointMatcher": (a.SCHEDULER,),
    # Buildbot defines these without any match method: they match no request there either.
    "BranchEndpointMatcher": (),
    "ViewBuildsEndpointMatcher": (),
}
SCOPED = ("ForceBuildEndpointMatcher", "StopBuildEndpointMatcher", "RebuildBuildEndpointMatcher")
# Requests Buildbot's REST API makes: with no rule denying them, Buildbot lets everyone.
REST = (a.READ, a.FORCE, a.STOP, a.REBUILD, a.CANCEL, a.SCHEDULER, a.WORKER_ADMIN)
OAUTH = ("GitHubAuth", "GoogleAuth", "GitLabAuth", "BitbucketAuth", "OAuth2Auth", "KeyCloakAuth")
OAUTH_INSTEAD = ("run an OAuth2 proxy (e.g. oauth2-proxy) in front and use util.RemoteUserAuth "
                 "(Gantry's Auth(proxy_header=...)), or local users")
ROLE_INSTEAD = {
    "RolesFromOwner": "Gantry has no owner roles: the owner of a build gets no extra role",
    "RolesFromEmails": "Gantry identities carry no e-mail: use util.RolesFromUsername",
    "RolesFromDomain": "Gantry identities carry no e-mail: use util.RolesFromUsername or groups",
}


class Written:
    """A Buildbot www auth object, as written at its line (translated by web_security)."""

    def __init__(self, kind: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.kind = kind
        self.args = args
        self.kwargs = kwargs
        self.defined_at = caller_location()

    def arg(self, index: int, name: str, default: Any = None) -> Any:
        return self.args[index] if len(self.args) > index else self.kwargs.get(name, default)

    def __repr__(self) -> str:
        return f"util.{self.kind}(...)"


def written(kind: str) -> type:
    """The util.<kind> class: calling it records the call."""

    def __new__(cls: type, *args: Any, **kwargs: Any) -> Written:  # noqa: N807
        return Written(kind, args, kwargs)

    return type(kind, (), {"__new__": __new__, "__doc__": f"Buildbot's util.{kind} (docs/buildbot-migration.md)."})


def web_security(
    auth: Any, authz: Any, lines: Mapping[str, tuple[str, int]], builders: Sequence[str] = (),
) -> tuple[Auth | None, Authz | None]:
    """Gantry's auth and authz for Buildbot's (either may be None: not configured); `lines`
    gives where the 'auth' and 'authz' keys are set, `builders` the configured builder names."""
    gantry_auth = _auth(auth, lines["auth"]) if auth is not None else None
    if authz is None:
        if gantry_auth is None:
            return None, None
        # Buildbot's default Authz() lets everyone, even anonymous visitors, do everything.
        note_at(DIFFERENT, "no c['www']['authz']: anonymous visitors may read; changing anything "
                           "needs a login (Buildbot lets anonymous visitors do everything)", lines["auth"])
        return gantry_auth, _make_authz([_allow(a.ALL, [ANY_ROLE], None, lines["auth"])], [], True)
    if not isinstance(authz, Written) or authz.kind != "Authz":
        note_at(UNSUPPORTED, f"c['www']['authz'] must be util.Authz(...), not {authz!r}: nobody may "
                             "do anything until it is", lines["authz"])
        return gantry_auth or _tokens_only(lines["authz"]), _make_authz([], [], False)
    if gantry_auth is None:
        # Without Gantry's auth the authz would not apply at all: switch on API tokens.
        gantry_auth = _tokens_only(lines["authz"])
    return gantry_auth, _authz(authz, builders)


def _tokens_only(where: tuple[str, int]) -> Auth:
    note_at(DIFFERENT, "c['www']['authz'] without a login: Auth() (API tokens, `gantry token "
                       "create`) so that the authz applies", where)
    auth = Auth()
    auth.defined_at = where
    return native(auth, Call("Auth"))


def _auth(auth: Any, where: tuple[str, int]) -> Auth | None:
    if not isinstance(auth, Written):
        note_at(UNSUPPORTED, f"c['www']['auth'] {auth!r}: use util.UserPasswordAuth or util.RemoteUserAuth", where)
        return None
    where = auth.defined_at
    kw: dict[str, Any] = {}
    if "userInfoProvider" in auth.kwargs:
        note_at(UNSUPPORTED, f"util.{auth.kind}(userInfoProvider=...): groups come from the proxy's "
                             "groups header or client certificates", where)
    if auth.kind == "NoAuth":
        note_at(SAME, "util.NoAuth -> no auth", where)
        return None
    if auth.kind == "UserPasswordAuth":
        users = auth.arg(0, "users")
        pairs = users.items() if isinstance(users, Mapping) else users if isinstance(users, list | tuple) else ()
        try:
            if not pairs:
                raise ValueError(users)
            kw["users"] = {str(u): hash_password(p.decode() if isinstance(p, bytes) else str(p)) for u, p in pairs}
        except (TypeError, ValueError):
            note_at(UNSUPPORTED, f"util.UserPasswordAuth({users!r}): give {{user: password}} or "
                                 "[(user, password)]", where)
            return None
        note_at(DIFFERENT, "util.UserPasswordAuth -> Auth(users=...): the web login form; the "
                           "passwords are stored as argon2 hashes (the written config holds only "
                           "the hashes); API tokens stay on", where)
    elif auth.kind == "RemoteUserAuth":
        header = auth.arg(0, "header", "REMOTE_USER")
        kw["proxy_header"] = header.decode() if isinstance(header, bytes) else header
        note_at(DIFFERENT, f"util.RemoteUserAuth -> Auth(proxy_header={kw['proxy_header']!r}): trusted "
                           "only from the proxy_addresses (loopback unless you set them), and the "
                           "header's whole value is the user name (Buildbot's headerRegex takes the "
                           "part before '@')", where)
        if "headerRegex" in auth.kwargs or len(auth.args) > 1:
            note_at(UNSUPPORTED, "util.RemoteUserAuth(headerRegex=...): have the proxy send the bare "
                                 "user name", where)
    elif auth.kind == "HTPasswdAuth":
        note_at(UNSUPPORTED, "util.HTPasswdAuth: Gantry checks argon2 hashes, not htpasswd's; give "
                             "Auth(users={name: hash}) (`python -m coordinator.passwords` prints a "
                             "hash)", where)
        return None
    elif auth.kind in OAUTH:
        note_at(UNSUPPORTED, f"util.{auth.kind}: {OAUTH_INSTEAD}", where)
        return None
    else:
        note_at(UNSUPPORTED, f"util.{auth.kind}: use util.UserPasswordAuth or util.RemoteUserAuth", where)
        return None
    out = Auth(**kw)
    out.defined_at = where
    return native(out, Call("Auth", (), kw))


def _role_matchers(matchers: Any, where: tuple[str, int]) -> tuple[list[Any], set[str], bool]:
    """Gantry's role matchers, the roles they can give, and whether groups make that set open."""
    out: list[Any] = []
    known: set[str] = set()
    open_ended = False
    for m in matchers or ():
        if not isinstance(m, Written):
            note_at(UNSUPPORTED, f"util.Authz(roleMatchers=[{m!r}]): a custom role matcher; write it "
                                 "natively as a RoleMatcher", where)
            continue
        if m.kind == "RolesFromUsername":
            roles, users = list(m.arg(0, "roles") or ()), list(m.arg(1, "usernames") or ())
            matcher: Any = native(RolesFromUsers(users=users, roles=roles),
                                  Call("RolesFromUsers", (), {"users": users, "roles": roles}))
            known |= set(roles)
            note_at(SAME, "util.RolesFromUsername -> RolesFromUsers", m.defined_at)
        elif m.kind == "RolesFromGroups":
            prefix = m.arg(0, "groupPrefix", "")
            matcher = native(RolesFromGroups(prefix=prefix), Call("RolesFromGroups", (), {"prefix": prefix}))
            open_ended = True
            note_at(SAME, "util.RolesFromGroups -> RolesFromGroups", m.defined_at)
        else:
            note_at(UNSUPPORTED, f"util.{m.kind}: {ROLE_INSTEAD.get(m.kind, 'Gantry has no such role matcher')}"
                                 " (its roles are given to nobody)", m.defined_at)
            continue
        out.append(matcher)
    return out, known, open_ended


class _Rule:
    def __init__(self, w: Written, roles: list[str]) -> None:
        self.kind = w.kind
        self.pattern = _role_of(w)
        self.deny = bool(w.kwargs.get("defaultDeny", True) if w.kind in SCOPED else w.arg(1, "defaultDeny", True))
        self.builder = w.arg(0, "builder") if w.kind in SCOPED else None
        self.roles = roles  # Gantry role names the pattern stands for
        self.at = w.defined_at


def _is_pattern(text: str) -> bool:
    return any(ch in text for ch in "*?[")


Grants = dict[tuple[tuple[str, ...] | None, str], list[str]]  # (builders or all, role) -> actions


def _authz(authz: Written, builders: Sequence[str]) -> Authz:
    where = authz.defined_at
    if authz.kwargs.get("stringsMatcher") not in (None, "fnmatch"):
        note_at(UNSUPPORTED, "util.Authz(stringsMatcher=...): Gantry matches builder names with "
                             "shell patterns; nobody may do anything until the rules use them", where)
        return _make_authz([], [], False)
    matchers, known, open_ended = _role_matchers(authz.kwargs.get("roleMatchers", authz.arg(1, "roleMatchers")), where)
    rules: list[_Rule] = []
    for w in authz.kwargs.get("allowRules", authz.arg(0, "allowRules")) or ():
        if not isinstance(w, Written) or w.kind not in MATCHED:
            note_at(UNSUPPORTED, f"util.Authz(allowRules=[{w!r}]): Gantry has the endpoint matchers "
                                 f"{', '.join(sorted(MATCHED))} (the rule allows nobody)", where)
            continue
        if not MATCHED[w.kind]:
            note_at(IGNORED, f"util.{w.kind} is ignored: it matches no request in Buildbot either", w.defined_at)
            continue
        rule = _Rule(w, _roles(w, known, open_ended))
        if rule.builder is not None and not isinstance(rule.builder, str):
            note_at(UNSUPPORTED, f"util.{w.kind}(builder={rule.builder!r}): give one builder name or "
                                 "pattern (the rule allows nobody)", w.defined_at)
            rule.roles, rule.builder = [], "*"  # still denies first, on any builder
        rules.append(rule)
        note_at(SAME, f"util.{rule.kind}(role={rule.pattern!r}) -> Allow(...)", rule.at)
    grants: Grants = {}
    for action in a.ALL:
        _grant(action, [r for r in rules if action in MATCHED[r.kind]], list(builders), grants)
    anonymous_read = _walk([r for r in rules if a.READ in MATCHED[r.kind]], None)[1]
    by_grant: dict[tuple[tuple[str, ...] | None, tuple[str, ...]], list[str]] = {}
    for (names, role), acts in grants.items():
        by_grant.setdefault((names, tuple(acts)), []).append(role)
    out = [_allow(list(acts), roles, names, where) for (names, acts), roles in by_grant.items()]
    note_at(DIFFERENT, "util.Authz -> Authz: each role is allowed what Buildbot's rules, walked in "
                       "order, allow it (scoped rules: on the configured builders, by name); what "
                       "no rule decides goes to every signed-in user; anonymous visitors "
                       + ("may read" if anonymous_read else "see nothing"), where)
    return _make_authz(out, matchers, anonymous_read)


def _role_of(w: Written) -> Any:
    # Buildbot's scoped matchers take builder= first; the others role= first.
    return w.kwargs.get("role") if w.kind in SCOPED else w.arg(0, "role")


def _roles(w: Written, known: set[str], open_ended: bool) -> list[str]:
    pattern = _role_of(w)
    if not isinstance(pattern, str):
        note_at(UNSUPPORTED, f"util.{w.kind}(role={pattern!r}): give a role name", w.defined_at)
        return []
    if not _is_pattern(pattern):
        return [pattern]
    # Buildbot matches the pattern against the user's roles; Gantry names roles: the roles
    # the role matchers can give that match it.
    roles = sorted(r for r in known if fnmatch.fnmatchcase(r, pattern))
    if open_ended:
        note_at(UNSUPPORTED, f"util.{w.kind}(role={pattern!r}) with util.RolesFromGroups: Gantry names "
                             f"roles, so only {roles or 'no roles'} are allowed; list the group roles",
                w.defined_at)
    return roles


def _walk(rules: list[_Rule], builder: str | None) -> tuple[set[str], bool]:
    """Buildbot's Authz.assertUserAllowed for one request: the roles the rules that match it
    allow, in order until one denies; and whether no rule denied (then everyone is allowed)."""
    roles: set[str] = set()
    for r in rules:
        if r.builder is not None and (builder is None or not fnmatch.fnmatchcase(builder, r.builder)):
            continue
        roles |= set(r.roles)
        if r.deny:
            return roles, False
    return roles, True


def _grant(action: str, rules: list[_Rule], builders: list[str], grants: Grants) -> None:
    """Who may do `action`, as Buildbot's `rules` (those matching it, in order) decide, into
    `grants`. Rules naming builders are walked for each configured builder, so Gantry's Allow
    lists them by name: Buildbot's "every builder but these" needs no negation."""

    def add(names: tuple[str, ...] | None, role: str) -> None:
        acts = grants.setdefault((names, role), [])
        if action not in acts:
            acts.append(action)

    # Buildbot's web authz never sees the others (changes, try jobs, reconfig, tokens, audit):
    # only the roles an "any endpoint" rule names get them.
    everyone_if_undecided = action in REST
    if not any(r.builder is not None for r in rules):
        roles, undecided = _walk(rules, None)
        for role in [ANY_ROLE] if undecided and everyone_if_undecided else sorted(roles):
            add(None, role)
        return
    walks = {b: _walk(rules, b) for b in builders}
    everyone = [b for b, (_, undecided) in walks.items() if undecided and everyone_if_undecided]
    by_role: dict[str, list[str]] = {ANY_ROLE: everyone} if everyone else {}
    for b, (roles, _) in walks.items():
        for role in sorted(roles):
            if b not in everyone:
                by_role.setdefault(role, []).append(b)
    for role, names in by_role.items():
        add(None if len(names) == len(builders) else tuple(_literal(n) for n in names), role)


def _literal(name: str) -> str:
    """A builder name as a pattern matching only itself."""
    return "".join(f"[{ch}]" if ch in "*?[" else ch for ch in name)


def _allow(acts: Sequence[str], roles: Sequence[str], names: Sequence[str] | None, where: tuple[str, int]) -> Allow:
    acts = a.ALL if set(acts) == set(a.ALL) else list(acts)  # written as actions.ALL
    kw: dict[str, Any] = {"roles": list(roles)}
    if names is not None:
        kw["builders"] = list(names)
    rule = Allow(acts, **kw)
    rule.defined_at = where
    return native(rule, Call("Allow", (acts,), kw))


def _make_authz(rules: list[Allow], matchers: list[Any], anonymous_read: bool) -> Authz:
    kw: dict[str, Any] = {}
    if matchers:
        kw["roles"] = matchers
    kw["rules"] = rules
    if anonymous_read:
        kw["anonymous_read"] = True
    return native(Authz(**kw), Call("Authz", (), kw))
