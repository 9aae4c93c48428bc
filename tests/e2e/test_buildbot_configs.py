"""Buildbot's own configurations on Gantry, end to end: the sample ``master.cfg`` that
``buildbot create-master`` writes (also with the manual's MailNotifier, and with the tutorial
tour's IRC bot), the manual's Triggerable example and its locks example (which checks out with
steps.SVN), each with only its import line changed (and its repository URL, SMTP relay and IRC
server pointed at a repository and servers the test runs or holds). Each is checked,
run by a real coordinator and worker, and every builder is forced; the steps the configuration
defines must run in order with their results. See tests/coordinator/buildbot_configs/README.md.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, cast

import aiohttp
import grpc
import pytest

from protos.gantry.v1 import control_pb2
from tests.coordinator.vcs_repos import SvnRepo
from tests.e2e.harness import SUCCESS, Cluster, Coordinator, describe_events, run_cli
from tests.net import port_of, reserve_port, reserved_port
from tests.notifiers.conftest import SmtpServer, authenticator, eventually, start_smtp

HTTP_LINE = r"Gantry coordinator HTTP on http://127\.0\.0\.1:(\d+)/"

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

FIXTURES = Path(__file__).resolve().parents[1] / "coordinator" / "buildbot_configs"
IMPORT = ("from buildbot.plugins import", "from coordinator.config.buildbot import")
HELLO_URL = "https://github.com/buildbot/hello-world.git"
# What https://github.com/buildbot/hello-world holds, in short: a function and its trial tests.
HELLO = {
    "hello/__init__.py": 'def hello(who):\n    """greet someone"""\n    return "hello " + who\n',
    "hello/test_hello.py": (
        "from twisted.trial import unittest\n\nimport hello\n\n\n"
        "class HelloTest(unittest.TestCase):\n"
        "    def test_hello(self):\n"
        '        self.assertEqual(hello.hello("world"), "hello world")\n'
    ),
}


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-c", "user.name=Tester", "-c", "user.email=t@example.org", "-c", "init.defaultBranch=master", *args],
        cwd=cwd, check=True, capture_output=True, text=True, timeout=60,
    )
    return out.stdout.strip()


def hello_world(path: Path) -> Path:
    for name, text in HELLO.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git(path, "init", "-q")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "hello world")
    return path


def master_cfg(name: str, tmp_path: Path, urls: dict[str, str] | None = None) -> Path:
    """The fixture as a user would run it: the import line changed, and URLs made local."""
    text = (FIXTURES / f"{name}.cfg").read_text().replace(*IMPORT)
    for old, new in (urls or {}).items():
        text = text.replace(old, new)
    path = tmp_path / "master" / "master.cfg"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    return path


def edit(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new))


class ListeningAsConfigured(Coordinator):
    """Started without --listen: the gRPC address is the configuration's c['protocols'] port."""

    def argv(self) -> list[str]:
        argv = super().argv()
        at = argv.index("--listen")
        return argv[:at] + argv[at + 2 :]


async def start(
    cluster: Cluster, path: Path, *, db: str | None = None, listen_as_configured: bool = False
) -> Coordinator:
    """A coordinator on master.cfg as is: --db only when `db` is given (else the config's
    db_url); --http on a free port (the command line overrides c['www']'s port 8010), and
    --listen too unless `listen_as_configured` (then the config's c['protocols'] port 9989
    becomes the one the harness holds)."""
    data_dir = cluster.tmp / "coordinator-data"
    data_dir.mkdir()
    kind = ListeningAsConfigured if listen_as_configured else Coordinator
    coord = kind(cluster, "coordinator", path, data_dir, db, None, ["--http", "127.0.0.1:0"])
    cluster.coordinators.append(coord)
    configured = coord.port  # held for it by the harness
    if listen_as_configured:
        edit(path, "tcp:9989:", f"tcp:{configured}:")
    code, out, err = await run_cli("checkconfig", str(path))
    assert code == 0, err.decode()
    await coord.start()
    if listen_as_configured:
        assert coord.process is not None and "--listen" not in coord.process.argv
        assert (coord.host, coord.port) == ("127.0.0.1", configured)
    return coord


async def force(coord: Coordinator, builder: str) -> tuple[list[tuple[str, str]], int]:
    """Force `builder`; its steps as (name, result) in order, and its build number."""
    rec = await coord.record()
    forced = await coord.force(builder)
    await rec.wait_kind("buildset.finished", buildset_id=forced.buildset_id)
    [finished] = rec.of_kind("build.finished", buildset_id=forced.buildset_id)
    build = await coord.get_build(builder, finished.build_number)
    assert build.complete, describe_events(rec.events)
    await rec.aclose()
    return [(s.name, RESULT_NAMES[s.result]) for s in build.steps], build.number


RESULT_NAMES = {SUCCESS: "SUCCESS", 1: "WARNINGS", 2: "FAILURE", 3: "SKIPPED", 4: "EXCEPTION"}


async def test_the_sample_master_cfg_runs(cluster: Cluster, tmp_path: Path, db: str | None) -> None:
    repo = hello_world(tmp_path / "hello-world")
    path = master_cfg("sample", tmp_path, {HELLO_URL: str(repo)})
    coord = await start(cluster, path, db=db)
    # c['db'] = {'db_url': "sqlite:///state.sqlite"}: next to master.cfg, as in Buildbot, unless
    # --db says otherwise (then that database, here PostgreSQL).
    assert (path.parent / "state.sqlite").is_file() == (db is None)
    assert not (cluster.tmp / "coordinator-data" / "gantry.sqlite").exists()
    await cluster.start_worker(coord, "example-worker", "pass")

    steps, number = await force(coord, "runtests")
    assert steps == [("git", "SUCCESS"), ("shell", "SUCCESS")]
    log = (await coord.read_log("runtests", number, "shell")).decode()
    assert "trial hello" in log and "PASSED (successes=1)" in log, log


async def test_the_manuals_triggerable_example_runs(cluster: Cluster, tmp_path: Path) -> None:
    coord = await start(cluster, master_cfg("triggerable", tmp_path), listen_as_configured=True)
    # Buildbot's worker runs any number of builds; a Gantry worker runs --max-builds (default 1),
    # and the triggering build waits for the triggered one on the same worker.
    await cluster.start_worker(coord, "example-worker", "pass", max_builds=2)
    rec = await coord.record()

    steps, _ = await force(coord, "checkin")
    assert steps == [("trigger", "SUCCESS"), ("trigger_1", "SUCCESS"), ("trigger_2", "SUCCESS")]
    steps, _ = await force(coord, "nightly")
    assert steps == [("trigger", "SUCCESS"), ("trigger_1", "SUCCESS"), ("trigger_2", "SUCCESS")]
    triggered = [e.builder for e in rec.of_kind("build.finished")
                 if e.builder not in ("checkin", "nightly")]
    # Each Trigger waited for its build, so they finished in the factories' order.
    assert triggered == ["mktarball", "build-all-platforms", "distributed-test",
                         "mktarball", "build-all-platforms", "package-all-platforms"]

    for leaf in ("mktarball", "build-all-platforms", "distributed-test", "package-all-platforms"):
        steps, number = await force(coord, leaf)
        assert steps == [(leaf, "SUCCESS")]
        assert leaf in (await coord.read_log(leaf, number, leaf)).decode()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_the_sample_with_the_manuals_mail_notifier_mails_the_build(cluster: Cluster, tmp_path: Path) -> None:
    repo = hello_world(tmp_path / "hello-world")
    sock = reserve_port()
    smtp = start_smtp(SmtpServer(port_of(sock)), sock, authenticator=authenticator("myuser@example.com", "mypassword"),
                      auth_require_tls=False, auth_required=True)
    try:
        path = master_cfg("mail", tmp_path, {
            HELLO_URL: str(repo), 'relayhost="smtp.example.com", smtpPort=587':
            f'relayhost="127.0.0.1", smtpPort={smtp.port}',
        })
        coord = await start(cluster, path)
        await cluster.start_worker(coord, "example-worker", "pass")
        steps, number = await force(coord, "runtests")
        assert steps == [("git", "SUCCESS"), ("shell", "SUCCESS")]
        [mail] = await eventually(smtp.messages, what="the build's mail")
    finally:
        assert smtp.controller is not None
        smtp.controller.stop()
    assert (mail.sender, mail.recipients, mail.login) == (
        "myuser@example.com", ["listaddr@example.org"], "myuser@example.com")
    assert "runtests" in mail.message["Subject"]
    body = mail.message.get_body(("plain",))
    assert body is not None
    # c['buildbotURL'] is where the mail links to.
    assert f"http://localhost:8010/builders/runtests/builds/{number}" in body.get_content()


async def sign_in_as_alice(coord: Coordinator, master: Path) -> None:
    """The tour's web login (Alice, Password1) works on the login form, anonymous calls are
    refused, and the harness then speaks gRPC as Alice with a token made on the host."""
    assert coord.process is not None
    m = await coord.process.wait_line(HTTP_LINE)
    async with aiohttp.ClientSession() as http:
        for password, status in (("password1", 401), ("Password1", 200)):
            async with http.post(f"http://127.0.0.1:{m.group(1)}/auth/login",
                                 json={"user": "Alice", "password": password}) as r:
                assert r.status == status, await r.text()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await coord.control.ListBuilders(control_pb2.ListBuildersRequest())
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    code, out, err = await run_cli("coordinator", "token", "create", "Alice", "--data-dir", str(coord.data_dir),
                                   "--db", f"sqlite:///{master.parent / 'state.sqlite'}")
    assert code == 0, err.decode()
    assert coord.channel is not None
    coord.channel = cast(grpc.aio.Channel, AsUser(coord.channel, out.decode().strip()))


class AsUser:
    """A channel whose calls (the status stream too) carry `authorization: Bearer TOKEN`."""

    def __init__(self, channel: grpc.aio.Channel, token: str) -> None:
        self._channel = channel
        self._pair = ("authorization", f"Bearer {token}")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._channel, name)

    def _signed(self, kind: str, *args: Any, **kwargs: Any) -> Any:
        call = getattr(self._channel, kind)(*args, **kwargs)

        def with_token(request: Any, *, metadata: Any = None, **kw: Any) -> Any:
            return call(request, metadata=(*(metadata or ()), self._pair), **kw)

        return with_token

    def unary_unary(self, *args: Any, **kwargs: Any) -> Any:
        return self._signed("unary_unary", *args, **kwargs)

    def unary_stream(self, *args: Any, **kwargs: Any) -> Any:
        return self._signed("unary_stream", *args, **kwargs)


async def test_the_tutorial_tours_irc_bot_never_holds_a_build_back(cluster: Cluster, tmp_path: Path) -> None:
    repo = hello_world(tmp_path / "hello-world")
    with reserved_port() as nobody:  # no IRC server there: the bot keeps reconnecting
        path = master_cfg("tour", tmp_path, {
            HELLO_URL: str(repo),
            # The tour then types "bbtest: notify on started finished failure" in the channel;
            # Gantry's bot has no `notify` command, so the configuration says it.
            'host="irc.freenode.net", nick="bbtest",': f'host="127.0.0.1", port={nobody}, nick="bbtest",',
            'channels=["#buildbot-test"]': 'channels=["#buildbot-test"], '
                                           'notify_events=["started", "finished", "failure"]',
        })
        coord = await start(cluster, path)
        await sign_in_as_alice(coord, path)
        await cluster.start_worker(coord, "example-worker", "pass")

        steps, number = await force(coord, "runtests")
        assert steps == [("git", "SUCCESS"), ("shell", "SUCCESS")]

        async def announcements() -> list[control_pb2.Notification]:
            got = await coord.control.ListNotifications(control_pb2.ListNotificationsRequest())
            irc = [n for n in got.notifications if n.kind == "irc"]
            return irc if len(irc) == 2 and all(n.attempts for n in irc) else []

        # The build's start and end are announced once the bot reaches the server; until then
        # they wait in the outbox, with the reason.
        irc = await eventually(announcements, what="both announcements tried")
        assert {n.state for n in irc} == {"pending"}, irc
        assert all(n.last_error for n in irc), irc
        assert any(f"Build #{number} of `runtests`" in n.summary for n in irc), irc


# What the locks example's Subversion trunk holds: the two targets its steps run.
MAKEFILE = "all:\n\techo built > built.txt\ntest: all\n\ttest -f built.txt && echo tests passed\n"


async def test_the_manuals_locks_example_checks_out_with_svn(cluster: Cluster, tmp_path: Path) -> None:
    svn = SvnRepo(tmp_path)
    revision = svn.commit("trunk", "Makefile", MAKEFILE)
    path = master_cfg("interlocks", tmp_path, {"http://example.org/svn/Trunk": f"{svn.url}/trunk"})
    coord = await start(cluster, path)
    await cluster.start_worker(coord, "fast", "pass")

    steps, number = await force(coord, "full1")
    assert steps == [("svn", "SUCCESS"), ("shell", "SUCCESS"), ("shell_1", "SUCCESS")]
    build = await coord.get_build("full1", number)
    got = {p.name: p.value_json for p in build.properties}
    assert got.get("got_revision") == f'"{revision}"', got
    assert "tests passed" in (await coord.read_log("full1", number, "shell_1")).decode()
