"""End to end: a real coordinator and worker report a build's commit statuses to the GitHub
stand-in (pending when the request is submitted, running - "pending" with "started" on GitHub -
when it starts, then the result), with the token from a SecretInAFile provider; and a failing
build posts to a Slack incoming webhook. `gantry notifications` shows each delivery."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.harness import FAILURE, SUCCESS, Cluster, run_cli
from tests.notifiers.conftest import eventually
from tests.notifiers.fakes import TOKEN, FakeServices

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

SHA = "0123456789abcdef0123456789abcdef01234567"

CONFIG = """
config = MasterConfig(
    workers=[Worker("w1", "secret1")],
    builders=[
        Builder("unit", workers=["w1"], steps=[ShellCommand(name="test", command=["echo", "all good"])]),
        Builder("lint", workers=["w1"], steps=[
            ShellCommand(name="lint", command="echo 'E501 line too long' >&2; exit 1")]),
    ],
    schedulers=[ForceScheduler("force", builders=["unit", "lint"])],
    url="https://ci.example.org",
    secretsProviders=[SecretInAFile(SECRETS)],
    notifiers=[
        GitHubStatusPush(token=Secret("github_token"), baseURL=FAKE + "/gh", builders=["unit"],
                         context=Interpolate("ci/%(prop:buildername)s")),
        SlackNotifier(FAKE + "/services/T000/B000/XXXX", mode=("failing",), builders=["lint"]),
    ],
)
"""


def config(fake: FakeServices, secrets: Path) -> str:
    return CONFIG.replace("SECRETS", repr(str(secrets))).replace("FAKE", repr(fake.url))


async def test_github_statuses_follow_a_build_and_a_failure_reaches_slack(
    cluster: Cluster, services_fake: FakeServices, tmp_path: Path
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "github_token").write_text(TOKEN + "\n")
    coord = await cluster.start_coordinator(config(services_fake, secrets))
    await cluster.start_worker(coord, "w1", "secret1")
    rec = await coord.record()

    forced = await coord.force("unit", repository="git@github.com:octo/hello.git", revision=SHA,
                               branch="main", reason="e2e")
    done = await rec.wait_kind("buildset.finished", buildset_id=forced.buildset_id)
    assert done.result == SUCCESS
    calls = await eventually(lambda: len(services_fake.of("github")) == 3 and services_fake.of("github"),
                             what="three GitHub statuses")
    assert services_fake.violations == []
    assert {c.path for c in calls} == {f"/gh/repos/octo/hello/statuses/{SHA}"}
    assert [(c.body["state"], c.body["description"]) for c in calls] == [
        ("pending", "Build pending."), ("pending", "Build #1 started."), ("success", "Build #1 done: success.")]
    assert calls[-1].body["target_url"] == "https://ci.example.org/builders/unit/builds/1"
    assert {c.body["context"] for c in calls} == {"ci/unit"}

    forced = await coord.force("lint", reason="e2e")
    done = await rec.wait_kind("buildset.finished", buildset_id=forced.buildset_id)
    assert done.result == FAILURE
    (post,) = await eventually(lambda: services_fake.of("slack"), what="the Slack message")
    assert post.body["text"] == "Gantry: lint #1 failure - https://ci.example.org/builders/lint/builds/1"
    assert "E501 line too long" in post.body["attachments"][0]["text"]
    assert services_fake.violations == []

    async def sent() -> list[dict[str, object]]:
        code, out, err = await run_cli("notifications", "--json", "--coordinator", coord.address)
        assert code == 0, err
        listed = json.loads(out)["notifications"]
        return listed if len(listed) == 4 and all(n["state"] == "sent" for n in listed) else []

    listed = await eventually(sent, what="four notifications sent")
    assert {n["kind"] for n in listed} == {"status", "chat"}
    assert f"GitHub success ci/unit @ {SHA[:12]}" in [n["summary"] for n in listed]
