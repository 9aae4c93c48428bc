"""The Buildbot layer's commit-status reporters, IRC bot, Mercurial and Subversion pollers and
steps, and webhook dialects: Buildbot's spellings build Gantry's objects, what does not carry
over is reported at its line, and the native configuration is the same configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from coordinator.config.loader import ConfigError, load_config_noted
from coordinator.domain.changes.svnpoller import split_file_branches
from tests.coordinator.test_buildbot_compat import master_cfg

CONFIG = """\
from buildbot.plugins import *
c = BuildmasterConfig = {}
c['workers'] = [worker.Worker("w", "pass", max_builds=2)]
f = util.BuildFactory()
f.addStep(steps.Mercurial(repourl="https://hg.example.org/app", branchType="inrepo", mode="full",
                          method="clobber", logEnviron=False))
f.addStep(steps.SVN(repourl=util.Interpolate("svn://svn.example.org/repo/%(src::branch)s"),
                    username="ci", password=util.Secret("svn"), preferLastChangedRev=True))
c['builders'] = [util.BuilderConfig(name="app", workernames=["w"], factory=f)]
c['change_source'] = [
    changes.HgPoller("https://hg.example.org/app", branches=["default", "stable"],
                     workdir="hgpoller-workdir", pollInterval=60, usetimestamps=True),
    changes.SVNPoller("svn://svn.example.org/repo", split_file=changes.split_file_branches,
                      svnuser="ci", pollInterval=120, cachepath="/tmp/svn.cache"),
]
c['schedulers'] = [
    schedulers.SingleBranchScheduler(name="trunk", change_filter=util.ChangeFilter(branch=None),
                                     builderNames=["app"]),
    schedulers.SingleBranchScheduler(name="stable", branch="stable", builderNames=["app"]),
]
started = reporters.MessageFormatterRenderable("Build started: costs $0.")
c['services'] = [
    reporters.GitHubStatusPush(token=util.Secret("github"), context="ci/app", verify=True, debug=True,
                               generators=[reporters.BuildRequestGenerator(builders=["app"]),
                                           reporters.BuildStartEndStatusGenerator(
                                               builders=["app"], start_formatter=started)]),
    reporters.GitLabStatusPush(token="t", baseURL="https://gitlab.example.org",
                               generators=[reporters.BuildStatusGenerator(tags=["x"])]),
    reporters.GiteaStatusPush("https://gitea.example.org", "t", warningAsSuccess=False, endDescription="$5 done"),
    reporters.BitbucketStatusPush(oauth_key="k", oauth_secret="s", status_key="ci"),
    reporters.BitbucketServerStatusPush("https://bitbucket.example.org", "ci", "pw", statusName="CI"),
    reporters.IRC(host="irc.example.org", nick="bbtest", channels=[{"channel": "#ci", "password": "k"}],
                  notify_events={"failure": 1, "started": 0}, authz={("force", "stop"): ["alice"], "mute": True},
                  useSASL=False, allowShutdown=None),
]
c['www'] = dict(port=8010, change_hook_dialects={
    'bitbucketcloud': {'codebase': 'app'}, 'bitbucketserver': {},
    'github': {'secret': 's', 'token': 't', 'strict': True},
})
c['buildbotURL'] = "https://ci.example.org/"
"""


def test_the_integrations_become_gantry_objects(tmp_path: Path) -> None:
    path = master_cfg(tmp_path, CONFIG)
    cfg, migration = load_config_noted(path)
    assert migration.problems() == []
    steps: list[Any] = list(cfg.builders[0].steps)
    hg, svn = steps
    assert (type(hg).__name__, hg.branchType, hg.mode, hg.method) == ("Mercurial", "inrepo", "full", "clobber")
    assert (type(svn).__name__, svn.username, svn.preferLastChangedRev) == ("SVN", "ci", True)
    hgpoller, svnpoller = cfg.change_source
    assert (type(hgpoller).__name__, hgpoller.branches, hgpoller.workdir) == (
        "HgPoller", ["default", "stable"], "hgpoller-workdir")
    assert (svnpoller.split_file, svnpoller.svnuser, svnpoller.poll_interval) == (split_file_branches, "ci", 120)
    # Buildbot's branch None (the default branch: an SVNPoller's trunk) is Gantry's "trunk".
    scheduler_list: list[Any] = list(cfg.schedulers)
    trunk, stable = scheduler_list
    assert trunk.change_filter is not None and trunk.change_filter.criteria == {"branch": "trunk"}
    assert stable.branch == "stable"

    github, gitlab, gitea, bitbucket, server, irc = cfg.notifiers
    assert (github.context, github.builders, github.errors) == ("ci/app", ["app"], [])
    # A fixed text stays as written ($ is not a template field), the other moments keep their default.
    assert github.descriptions == {"pending": "Build pending.", "start": "Build started: costs $$0.",
                                   "end": "Build #$number done: $result_lower."}
    assert (gitlab.base_url, gitlab.tags) == ("https://gitlab.example.org", ["x"])
    # Buildbot's default context for GitLab too (Gantry's own is the bare builder name).
    assert repr(gitlab.context) == "Interpolate('buildbot/%(prop:buildername)s')"
    assert gitea.descriptions["end"] == "$$5 done"  # the plugin's description is a fixed text
    assert (gitea.base_url, bitbucket.context, server.status_name) == ("https://gitea.example.org", "ci", "CI")
    assert (irc.host, irc.nick, irc.channels, irc.notify_events) == ("irc.example.org", "bbtest", [("#ci", "k")],
                                                                     ("failure",))
    assert irc.authz["FORCE"] == ["alice"] and irc.errors == []
    www: Any = cfg.www
    assert set(www["change_hook_dialects"]) == {"bitbucketcloud", "bitbucketserver", "github"}
    assert www["change_hook_dialects"]["github"] == {"secret": "s", "strict": True}

    notes = [n.removeprefix(f"{path}:") for n in migration.notes()]
    assert notes == [
        "13: note: changes.SVNPoller: the trunk's changes are on branch 'trunk' (Buildbot: None); "
        "util.ChangeFilter(branch=None) and SingleBranchScheduler(branch=None) mean it",
        "17: note: util.ChangeFilter(branch=None): the default branch, 'trunk' in Gantry (SVNPoller's trunk)",
        "27: note: reporters.GitLabStatusPush: also reports pending and start (Gantry's status pushes report "
        "the request, the start and the end of each build)",
        "29: note: reporters.GiteaStatusPush: pull-request builds report under context= too (the plugin's "
        "context_pr, buildbot/pull_request/BUILDER, has no counterpart)",
        "5: note: steps.Mercurial(logEnviron=...) is ignored: Gantry does not write the environment into the log",
        "11: note: changes.HgPoller(usetimestamps=...) is ignored: changes carry the commit time",
        "13: note: changes.SVNPoller(cachepath=...) is ignored: the last revision seen is kept in Gantry's database",
        "23: note: reporters.GitHubStatusPush(verify=True) is ignored: that is what Gantry does",
        "23: note: reporters.GitHubStatusPush(debug=...) is ignored: use verbose=True to log each status sent",
        "29: note: reporters.GiteaStatusPush(warningAsSuccess=False) is ignored: that is what Gantry does",
        "32: note: reporters.IRC(authz={'mute': ...}) is ignored: Gantry's bot has no 'mute' command (it has "
        "status, last, watch, force, stop, help, commands, hello)",
        "32: note: reporters.IRC(useSASL=False) is ignored: that is what Gantry does",
        "32: note: reporters.IRC(allowShutdown=None) is ignored: that is what Gantry does",
        "38: note: c['www'] change hook 'github' option 'token' is ignored: Gantry reads the payload only (no "
        "API calls: a pull request's change lists no files)",
    ]


def test_the_native_config_of_the_integrations_is_the_same_configuration(tmp_path: Path) -> None:
    path = master_cfg(tmp_path, CONFIG)
    compat, migration = load_config_noted(path)
    native = tmp_path / "native.py"
    native.write_text(migration.native_source())
    assert "split_file=split_file_branches" in native.read_text()
    plain, plain_migration = load_config_noted(native)
    assert not plain_migration.is_buildbot

    def options(obj: Any) -> dict[str, str]:
        # repr: renderables (Secret, Interpolate) compare by identity; private state is per object
        return {k: repr(v) for k, v in vars(obj).items()
                if k not in ("defined_at", "gantry_native", "client") and not k.startswith("_")}

    assert [options(n) for n in compat.notifiers] == [options(n) for n in plain.notifiers]
    assert [options(s) for s in compat.change_source] == [options(s) for s in plain.change_source]
    assert [[options(s) for s in b.steps] for b in compat.builders] == [
        [options(s) for s in b.steps] for b in plain.builders]
    def wants(s: Any) -> Any:
        return s.change_filter.criteria if s.change_filter else s.branch

    assert [wants(s) for s in compat.schedulers] == [wants(s) for s in plain.schedulers]
    assert compat.www == plain.www


UNSUPPORTED = """\
from buildbot.plugins import *
c = BuildmasterConfig = {}
c['services'] = [
    reporters.GitHubStatusPush(token="t", verify=False),
    reporters.GitHubCommentPush(token="t"),
    reporters.GitLabStatusPush(token="t", generators=[
        reporters.BuildStatusGenerator(builders=["a"], message_formatter=reporters.MessageFormatter(template="x")),
        reporters.BuildRequestGenerator(builders=["b"], formatter=reporters.MessageFormatterRenderable(
            util.Interpolate("%(prop:buildername)s")))]),
    reporters.IRC(host="irc.example.org", nick="bbtest", channels=["#ci"], allowShutdown=True, useSASL=True),
]
c['change_source'] = [changes.HgPoller("https://hg.example.org/app", workdir="w", revlink=lambda b, r: r)]
f = util.BuildFactory([steps.SVN(repourl="svn://x/trunk", method="export"),
                       steps.SVN(repourl="svn://x/trunk", depth="empty")])
c['www'] = dict(change_hook_dialects={'bitbucketcloud': {'bitbucket_property_whitelist': ['a']}})
"""


def test_what_the_integrations_lack_is_reported_at_its_line(tmp_path: Path) -> None:
    path = master_cfg(tmp_path, UNSUPPORTED)
    with pytest.raises(ConfigError) as err:
        load_config_noted(path)
    assert [str(p) for p in err.value.problems] == [
        f"{path}:4: not supported: reporters.GitHubStatusPush(verify=...): Gantry always verifies the server's "
        "TLS certificate: add its CA to the coordinator host's trust store",
        f"{path}:5: not supported: reporters.GitHubCommentPush: Gantry posts no comments; use "
        "reporters.GitHubStatusPush, or GitHubChecksPush in a native configuration (a failed check run shows "
        "the failing step's log)",
        f"{path}:7: not supported: reporters.MessageFormatter: give MailNotifier subject=, body= and html= "
        "templates (docs/notifiers.md), a status push startDescription= and endDescription= (docs/reporters.md)",
        f"{path}:8: not supported: reporters.BuildRequestGenerator(formatter=...): give the reporter "
        "startDescription=, endDescription= and pendingDescription= templates (docs/reporters.md)",
        f"{path}:8: not supported: reporters.GitLabStatusPush(generators=...): the generators select different "
        "builds; make one reporter per builders=/tags= choice",
        f"{path}:10: not supported: reporters.IRC(allowShutdown=...): Gantry's bot has no shutdown command: "
        "stop the coordinator on its host",
        f"{path}:10: not supported: reporters.IRC(useSASL=...): use password= (sent to NickServ as IDENTIFY)",
        f"{path}:12: not supported: changes.HgPoller(revlink=...): drop it (HgPoller changes have no revision "
        "links)",
        f"{path}:13: not supported: steps.SVN(method='export'): use method='clobber' (a new checkout) or 'fresh'",
        f"{path}:14: not supported: steps.SVN(depth=...): drop it (the whole tree is checked out)",
        f"{path}:15: not supported: c['www'] change hook 'bitbucketcloud' option 'bitbucket_property_whitelist': "
        "drop it (changes carry Gantry's own payload properties)",
        f"{path}:6: notifier 'GitLabStatusPush' names unknown builder 'a'",  # the reporter's own check
    ]
