"""Commit-status reporters through the real notification service (in-memory storage: the
outbox's storage contract is tested elsewhere) against local stand-ins for GitHub, GitLab,
Gitea, Bitbucket Cloud and Bitbucket Server that check each request against the published API
(tests/notifiers/fakes.py): the states of a build's life, the context names, tokens from the
secrets providers, a 5xx or a down service (retried, delaying only its own notification), a
4xx (failed at once with the service's message), and states that arrive out of order."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from coordinator.config.secrets import SecretInAFile
from coordinator.domain import events
from coordinator.domain.builds import bookkeeping
from coordinator.domain.model import CaseResult, NewBuildset, SourceStamp
from coordinator.domain.properties.renderables import Interpolate, Secret
from coordinator.domain.results import Result
from notifiers.base import DeliveryError, DeliveryRejected, Notifier
from notifiers.reporters import (
    BitbucketServerStatusPush,
    BitbucketStatusPush,
    GiteaStatusPush,
    GitHubChecksPush,
    GitHubStatusPush,
    GitLabStatusPush,
)
from notifiers.reporters.repository import owner_and_name, repository_path
from notifiers.service import NotificationService
from tests.net import reserved_port
from tests.notifiers.conftest import Store, eventually, run_build, settled, tick
from tests.notifiers.fakes import OAUTH_KEY, OAUTH_SECRET, PASSWORD, TOKEN, USER, FakeServices

SHA = "a" * 40
GITHUB_REPO = "git@github.com:octo/hello.git"
URL = "https://ci.example.org"






async def build(store: Store, builder: str, result: Result, repository: str = GITHUB_REPO,
                log_text: str = "", cases: Sequence[CaseResult] = ()) -> int:
    _, number = await run_build(store.db, builder, result, log_text=log_text, sourcestamps=[
        SourceStamp(repository=repository, branch="main", revision=SHA)], cases=cases)
    return number




async def test_github_statuses_pending_running_and_the_result(
    mem: Store, mem_services: Callable[..., NotificationService], services_fake: FakeServices
) -> None:
    push = GitHubStatusPush(token=TOKEN, baseURL=services_fake.url + "/gh")
    await mem_services([push]).start()
    await build(mem, "unit", Result.FAILURE)
    sent = await settled(mem, 3)
    assert [n.state for n in sent] == ["sent"] * 3 and services_fake.violations == []
    calls = services_fake.of("github")
    assert {c.path for c in calls} == {f"/gh/repos/octo/hello/statuses/{SHA}"}
    assert calls[0].headers["authorization"] == f"token {TOKEN}"
    bodies = sorted((c.body for c in calls), key=lambda b: ["Build pending.", "Build #1 started.",
                                                            "Build #1 done: failure."].index(b["description"]))
    assert [b["state"] for b in bodies] == ["pending", "pending", "failure"]
    assert {b["context"] for b in bodies} == {"buildbot/unit"}
    assert [b["target_url"] for b in bodies] == [f"{URL}/builders/unit", f"{URL}/builders/unit/builds/1",
                                                  f"{URL}/builders/unit/builds/1"]
    assert sent[-1].payload["summary"] == f"GitHub failure buildbot/unit @ {SHA[:12]}"


@pytest.mark.parametrize(("result", "expected"), [
    (Result.SUCCESS, "success"), (Result.WARNINGS, "success"), (Result.EXCEPTION, "error"),
    (Result.CANCELLED, "error")])
async def test_github_result_states_are_buildbots(
    mem: Store, mem_services: Callable[..., NotificationService], services_fake: FakeServices,
    result: Result, expected: str,
) -> None:
    await mem_services([GitHubStatusPush(token=TOKEN, baseURL=services_fake.url + "/gh")]).start()
    await build(mem, "unit", result)
    await settled(mem, 3)
    assert services_fake.violations == []
    assert sorted(c.body["state"] for c in services_fake.of("github")) == sorted(["pending", "pending", expected])


async def test_github_check_runs_carry_the_failing_steps_log(
    mem: Store, mem_services: Callable[..., NotificationService], services_fake: FakeServices
) -> None:
    checks = GitHubChecksPush(token=TOKEN, baseURL=services_fake.url + "/gh", context="ci/unit")
    await mem_services([checks]).start()
    await build(mem, "unit", Result.FAILURE, log_text="collected 3 items\nFAILED test_frob - assert 1 == 2\n",
                cases=[CaseResult("test_frob", "tests.test_x", "failed", 0.1, "assert 1 == 2"),
                       CaseResult("test_ok", "tests.test_x", "passed", 0.1)])
    await settled(mem, 3)
    assert services_fake.violations == []
    by_status = {c.body["status"]: c.body for c in services_fake.of("github-checks")}
    assert set(by_status) == {"queued", "in_progress", "completed"}
    done = by_status["completed"]
    assert (done["name"], done["head_sha"], done["conclusion"]) == ("ci/unit", SHA, "failure")
    assert done["details_url"] == f"{URL}/builders/unit/builds/1"
    summary = done["output"]["summary"]
    assert "Failing step: **test**" in summary and "FAILED test_frob - assert 1 == 2" in summary
    assert "Failing tests:\n- `tests.test_x.test_frob`: assert 1 == 2" in summary and "test_ok" not in summary


@pytest.mark.parametrize(("make", "service", "path", "states"), [
    (lambda url: GitLabStatusPush(token=Secret("gl"), baseURL=url),
     "gitlab", f"/api/v4/projects/group%2Fhello/statuses/{SHA}", ["pending", "running", "canceled"]),
    (lambda url: GiteaStatusPush(url, token=Secret("gl")),
     "gitea", f"/api/v1/repos/octo/hello/statuses/{SHA}", ["pending", "pending", "error"]),
    (lambda url: BitbucketStatusPush(auth=(USER, Secret("bb")), base_url=url + "/2.0/repositories"),
     "bitbucket", f"/2.0/repositories/octo/hello/commit/{SHA}/statuses/build",
     ["INPROGRESS", "INPROGRESS", "STOPPED"]),
    (lambda url: BitbucketServerStatusPush(url, token=Secret("gl")),
     "bitbucket-server", f"/rest/build-status/1.0/commits/{SHA}", ["INPROGRESS", "INPROGRESS", "FAILED"]),
])
async def test_each_forge_with_its_token_from_the_secrets_providers(
    mem: Store, mem_services: Callable[..., NotificationService], services_fake: FakeServices, tmp_path: Path,
    make: Callable[[str], Notifier], service: str, path: str, states: list[str],
) -> None:
    (tmp_path / "gl").write_text(TOKEN + "\n")
    (tmp_path / "bb").write_text(PASSWORD + "\n")
    repo = "https://gitlab.example.org/group/hello.git" if service == "gitlab" else "ssh://git@forge/octo/hello.git"
    await mem_services([make(services_fake.url)], secrets=[SecretInAFile(tmp_path)]).start()
    await build(mem, "unit", Result.CANCELLED, repository=repo)
    await settled(mem, 3)
    assert services_fake.violations == []
    calls = sorted(services_fake.of(service), key=lambda c: ["pending", "running", "INPROGRESS"].index(
        c.body["state"]) if c.body["state"] in ("pending", "running") else 9)
    assert {c.path for c in calls} == {path}
    assert sorted(c.body["state"] for c in calls) == sorted(states)
    if service == "gitlab":
        assert {(c.body["name"], c.body["ref"]) for c in calls} == {("unit", "main")}  # name = builder
    if service.startswith("bitbucket"):
        assert {(c.body["key"], c.body["name"]) for c in calls} == {("unit", "unit")}


async def test_a_4xx_is_failed_at_once_with_the_services_message(
    mem: Store, mem_services: Callable[..., NotificationService], services_fake: FakeServices
) -> None:
    await mem_services([GitHubStatusPush(token="wrong", baseURL=services_fake.url + "/gh")]).start()
    await build(mem, "unit", Result.SUCCESS)
    got = await settled(mem, 3)
    assert [(n.state, n.attempts) for n in got] == [("failed", 1)] * 3
    assert "HTTP 401: Bad credentials" in got[0].last_error


async def test_a_5xx_or_down_service_delays_only_its_own_notifications(
    mem: Store, mem_services: Callable[..., NotificationService], services_fake: FakeServices
) -> None:
    services_fake.script["gitlab"] = [503, 503, 502]
    with reserved_port() as nobody:
        down = GiteaStatusPush(f"http://127.0.0.1:{nobody}", token=TOKEN, name="down")
        flaky = GitLabStatusPush(token=TOKEN, baseURL=services_fake.url)
        fine = GitHubStatusPush(token=TOKEN, baseURL=services_fake.url + "/gh")
        await mem_services([down, flaky, fine], max_attempts=1_000_000).start()
        await build(mem, "unit", Result.SUCCESS, repository="https://github.com/octo/hello")

        async def states() -> dict[str, list[str]]:
            got: dict[str, list[str]] = {}
            for n in await mem.db.outbox.list_notifications(100):
                got.setdefault(n.notifier, []).append(n.state)
            return got

        async def both_delivered() -> bool:
            s = await states()
            return s.get("GitLabStatusPush") == ["sent"] * 3 and s.get("GitHubStatusPush") == ["sent"] * 3

        await eventually(both_delivered, what="GitLab after its 5xx, and GitHub")
        downs = [n for n in await mem.db.outbox.list_notifications(100) if n.notifier == "down"]
        assert len(downs) == 3 and all(n.state == "pending" and n.last_error for n in downs)
    assert services_fake.script["gitlab"] == [] and services_fake.violations == []
    flaky_attempts = sum(n.attempts for n in await mem.db.outbox.list_notifications(100)
                         if n.notifier == "GitLabStatusPush")
    assert flaky_attempts == 3 + 3  # three 5xx answers, then each of the three once


async def test_an_older_state_never_overwrites_a_newer_one(services_fake: FakeServices) -> None:
    push = GitLabStatusPush(token=TOKEN, baseURL=services_fake.url)

    def payload(state: str, event_id: int) -> dict[str, Any]:
        url = f"{services_fake.url}/api/v4/projects/group%2Fhello/statuses/{SHA}"
        return {"event_id": event_id, "requests": [{"method": "POST", "url": url, "state": state, "sha": SHA,
                                                     "body": {"state": state, "name": "unit"},
                                                     "target": url + "#unit"}]}

    try:
        await push.deliver(payload("success", 7))
        await push.deliver(payload("running", 5))  # a retry that comes late: skipped
    finally:
        await push.aclose()
    assert [c.body["state"] for c in services_fake.calls] == ["success"]
    assert services_fake.violations == []


async def test_builders_filter_and_repositories_of_other_forges(
    mem: Store, mem_services: Callable[..., NotificationService], services_fake: FakeServices
) -> None:
    push = GitHubStatusPush(token=TOKEN, baseURL=services_fake.url + "/gh", builders=["unit"],
                            context=Interpolate("ci/%(prop:buildername)s/%(prop:branch)s"))
    await mem_services([push]).start()
    await build(mem, "other", Result.SUCCESS)
    await build(mem, "unit", Result.SUCCESS, repository="/srv/git/local")  # not a forge URL: nothing
    await build(mem, "unit", Result.SUCCESS)
    await settled(mem, 3)
    assert {c.body["context"] for c in services_fake.of("github")} == {"ci/unit/main"}


def test_repository_urls() -> None:
    assert owner_and_name("https://github.com/octo/hello.git") == ("octo", "hello")
    assert owner_and_name("git@github.com:octo/hello.git") == ("octo", "hello")
    assert owner_and_name("ssh://git@gitea.example.org:2222/octo/hello.git") == ("octo", "hello")
    assert owner_and_name("git://example.org/octo/hello") == ("octo", "hello")
    assert repository_path("https://gitlab.com/group/sub/hello.git") == ("gitlab.com", "group/sub/hello")
    assert repository_path("https://bitbucket.example.org/scm/PRJ/hello.git") == ("bitbucket.example.org",
                                                                                  "PRJ/hello")
    assert owner_and_name("/srv/git/hello") is None and owner_and_name("") is None


def test_configuration_errors() -> None:
    assert GitHubStatusPush(token="").errors == ["GitHubStatusPush needs a token (Secret('...') or a string)"]
    assert GitLabStatusPush(token="t", baseURL="gitlab.com").errors == [
        "baseURL must be an http:// or https:// URL, not 'gitlab.com'"]
    assert BitbucketStatusPush().errors == [
        "BitbucketStatusPush needs one of oauth_key/oauth_secret, auth=(user, password) or token="]
    assert BitbucketStatusPush("key").errors[0] == "oauth_key and oauth_secret go together"
    assert BitbucketServerStatusPush("https://bb", token="t", timeout=0).errors == [
        "timeout must be seconds > 0, not 0"]


async def test_a_request_cancelled_before_it_started_ends_its_pending_status(
    mem: Store, mem_services: Callable[..., NotificationService], services_fake: FakeServices
) -> None:
    await mem_services([GitLabStatusPush(token=TOKEN, baseURL=services_fake.url)]).start()
    at = tick()
    ss = SourceStamp(repository="https://gitlab.com/group/hello.git", branch="main", revision=SHA)
    bs = NewBuildset(reason="test", scheduler="s", builders=["unit"], sourcestamps=[ss])
    await mem.db.buildsets.add_buildset(bs, at, None, events=lambda bs_id, requests: [
        events.buildset_added(bs_id, bs, at), *(events.buildrequest_added(r, at) for r in requests)])
    (request,) = await mem.db.buildsets.unclaimed_requests()
    await settled(mem, 1)
    await bookkeeping.cancel(mem.db.book, [request.id], "not needed", tick())
    await settled(mem, 2)
    assert services_fake.violations == []
    assert [(c.body["state"], c.body["description"]) for c in services_fake.of("gitlab")] == [
        ("pending", "Build pending."), ("canceled", "Build request cancelled.")]


async def test_bitbucket_cloud_with_an_oauth_consumer(
    mem: Store, mem_services: Callable[..., NotificationService], services_fake: FakeServices
) -> None:
    push = BitbucketStatusPush(OAUTH_KEY, OAUTH_SECRET, base_url=services_fake.url + "/2.0/repositories",
                               oauth_url=services_fake.url + "/site/oauth2/access_token")
    await mem_services([push]).start()
    await build(mem, "unit", Result.SUCCESS, repository="git@bitbucket.org:octo/hello.git")
    got = await settled(mem, 3)
    assert [n.state for n in got] == ["sent"] * 3 and services_fake.violations == []
    assert len(services_fake.of("bitbucket-oauth")) == 1  # the access token is kept
    assert {c.headers["authorization"] for c in services_fake.of("bitbucket")} == {"Bearer bb-access"}
    assert sorted(c.body["state"] for c in services_fake.of("bitbucket")) == ["INPROGRESS", "INPROGRESS",
                                                                              "SUCCESSFUL"]

    wrong = BitbucketStatusPush(OAUTH_KEY, "guess", oauth_url=services_fake.url + "/site/oauth2/access_token",
                                base_url=services_fake.url + "/2.0/repositories")
    try:
        with pytest.raises(DeliveryRejected, match="HTTP 400: Invalid client_id or client_secret"):
            await wrong.auth_headers()
    finally:
        await wrong.aclose()


async def test_a_retry_after_a_partial_failure_sends_only_what_did_not_go_out(services_fake: FakeServices) -> None:
    push = GitLabStatusPush(token=TOKEN, baseURL=services_fake.url)
    url = f"{services_fake.url}/api/v4/projects/group%2Fhello/statuses/"
    payload = {"event_id": 3, "requests": [
        {"method": "POST", "url": url + sha, "state": "running", "sha": sha,
         "body": {"state": "running", "name": "unit"}, "target": f"{url}{sha}#unit"}
        for sha in (SHA, "b" * 40)]}
    services_fake.script["gitlab"] = [0, 502]  # 0: not scripted, answered normally
    try:
        with pytest.raises(DeliveryError, match="HTTP 502"):
            await push.deliver(payload)
        await push.deliver(payload)  # GitLab would refuse a second "running" for the first commit
    finally:
        await push.aclose()
    assert [c.path.rsplit("/", 1)[1] for c in services_fake.calls] == [SHA, "b" * 40]
    assert services_fake.violations == []
