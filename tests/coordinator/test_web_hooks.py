"""Each webhook dialect's signature check and payload parsing, on payloads shaped like the
services' documented examples (tests/coordinator/webhooks/*.json), and the `www` settings."""

from __future__ import annotations

import hashlib
import hmac
import json
import textwrap
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from coordinator.config.loader import ConfigError, load_config
from coordinator.web.hooks import GiteaHook, GitHubHook, GitLabHook, HookError
from coordinator.web.receiver import idempotency_key
from coordinator.web.settings import override_address, web_settings

FIXTURES = Path(__file__).parent / "webhooks"
SECRET = "It's a Secret to Everybody"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def sign(body: bytes, secret: str = SECRET, algo: Any = hashlib.sha256) -> str:
    return hmac.new(secret.encode(), body, algo).hexdigest()


def github(
    event: str, payload: dict[str, Any], secret: str = SECRET, **options: Any
) -> tuple[GitHubHook, dict[str, str], bytes]:
    hook = GitHubHook({"secret": secret, **options} if secret else options)
    body = body_of(payload)
    headers = {"x-github-event": event, "content-type": "application/json",
               "x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"}
    if secret:
        headers["x-hub-signature-256"] = "sha256=" + sign(body, secret)
    return hook, headers, body


def deliver(hook: Any, headers: dict[str, str], body: bytes) -> Any:
    hook.verify(headers, body)
    return hook.parse(headers, body)


def refused(hook: Any, headers: dict[str, str], body: bytes) -> HookError:
    with pytest.raises(HookError) as info:
        deliver(hook, headers, body)
    return info.value


# --------------------------------------------------------------------------- GitHub


def test_github_signature_from_githubs_documentation() -> None:
    # docs.github.com "Validating webhook deliveries": this secret and body give this digest.
    hook = GitHubHook({"secret": SECRET})
    body = b"Hello, World!"
    want = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    hook.verify({"x-hub-signature-256": want}, body)


def test_github_push_is_one_change_per_commit() -> None:
    parsed = deliver(*github("push", fixture("github_push")))
    assert [c.revision for c in parsed.changes] == [
        "a10867b14bb761a232cd80139fbd4c0d33264240", "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"]
    first, second = parsed.changes
    assert first.author == "Codertocat <21031067+Codertocat@users.noreply.github.com>"
    assert first.committer == "GitHub <noreply@github.com>"
    assert first.comments == "Fix the greeting\n\nIt said 'Helo'."
    assert first.files == ["docs/greeting.md", "README.md"]
    assert second.files == ["src/hello.c", "old.sh"]
    assert {c.branch for c in parsed.changes} == {"main"}
    assert {c.repository for c in parsed.changes} == {"https://github.com/Codertocat/Hello-World"}
    assert {c.project for c in parsed.changes} == {"Codertocat/Hello-World"}
    assert {c.category for c in parsed.changes} == {"push"}
    assert first.revlink == "https://github.com/Codertocat/Hello-World/commit/a10867b14bb761a232cd80139fbd4c0d33264240"
    assert first.when == 1557947965.0  # 2019-05-15T15:19:25-04:00
    assert first.properties == {"event": "push"}


def test_github_tag_push_and_branch_deletion() -> None:
    parsed = deliver(*github("push", fixture("github_push_tag")))
    [change] = parsed.changes
    assert (change.branch, change.category, change.revision) == (
        "v1.0.0", "tag", "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c")
    deleted = deliver(*github("push", fixture("github_push_delete")))
    assert deleted.changes == [] and "deleted" in deleted.ignored


def test_github_new_branch_builds_its_head_commit_only() -> None:
    payload = fixture("github_push")
    payload["created"] = True
    parsed = deliver(*github("push", payload))
    assert [c.revision for c in parsed.changes] == ["0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"]


def test_github_skip_ci_and_other_refs() -> None:
    payload = fixture("github_push")
    payload["head_commit"]["message"] = "docs only [ci skip]"
    assert deliver(*github("push", payload)).changes == []
    payload = fixture("github_push")
    payload["ref"] = "refs/notes/commits"
    assert "neither a branch nor a tag" in deliver(*github("push", payload)).ignored


def test_github_ping_and_unhandled_events_store_nothing() -> None:
    assert deliver(*github("ping", fixture("github_ping"))).ignored == "pong"
    assert deliver(*github("issues", {"action": "opened"})).changes == []


def test_github_pull_request() -> None:
    [change] = deliver(*github("pull_request", fixture("github_pull_request"))).changes
    assert change.revision == "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
    assert change.branch == "refs/pull/2/merge"
    assert change.category == "pull"
    assert change.author == "Codertocat"
    assert change.repository == "https://github.com/Codertocat/Hello-World"
    assert change.project == "Codertocat/Hello-World"
    assert change.revlink == "https://github.com/Codertocat/Hello-World/pull/2"
    assert change.comments.startswith("GitHub Pull Request #2 (1 commit)\nUpdate the README")
    assert change.properties["github.number"] == 2
    assert change.properties["github.title"] == "Update the README with new information."
    assert change.properties["github.head.repo.full_name"] == "Codertocat/Hello-World"
    assert change.properties["github.head.ref"] == "changes"
    assert change.properties["basename"] == "master"
    assert change.properties["event"] == "pull_request"


@pytest.mark.parametrize(("action", "builds"), [("synchronize", True), ("reopened", True),
                                                ("closed", False), ("labeled", False)])
def test_github_pull_request_actions(action: str, builds: bool) -> None:
    payload = fixture("github_pull_request")
    payload["action"] = action
    parsed = deliver(*github("pull_request", payload))
    assert bool(parsed.changes) is builds
    assert builds or action in parsed.ignored


def test_github_head_ref_option() -> None:
    [change] = deliver(*github("pull_request", fixture("github_pull_request"), pullrequest_ref="head")).changes
    assert change.branch == "refs/pull/2/head"


def test_github_signatures() -> None:
    hook, headers, body = github("push", fixture("github_push"))
    assert refused(hook, headers, body + b" ").status == 403  # body changed after signing
    headers["x-hub-signature-256"] = "sha256=" + sign(body, "another secret")
    assert refused(hook, headers, body).status == 403
    headers["x-hub-signature-256"] = sign(body)  # no sha256= prefix
    assert refused(hook, headers, body).status == 403
    del headers["x-hub-signature-256"]
    err = refused(hook, headers, body)
    assert err.status == 401 and "X-Hub-Signature-256" in err.reason
    headers["x-hub-signature"] = "sha1=" + sign(body, algo=hashlib.sha1)  # legacy header only
    assert deliver(hook, headers, body).changes


def test_github_without_secret_accepts_unsigned_deliveries() -> None:
    hook, headers, body = github("push", fixture("github_push"), secret="")
    assert "x-hub-signature-256" not in headers
    assert len(deliver(hook, headers, body).changes) == 2


def test_github_form_encoded_delivery() -> None:
    hook = GitHubHook({"secret": SECRET})
    body = urlencode({"payload": json.dumps(fixture("github_push"))}).encode()
    headers = {"x-github-event": "push", "content-type": "application/x-www-form-urlencoded",
               "x-hub-signature-256": "sha256=" + sign(body)}
    assert len(deliver(hook, headers, body).changes) == 2


def test_github_malformed_deliveries_say_why() -> None:
    hook, headers, _ = github("push", {})
    bad = b"{not json"
    headers["x-hub-signature-256"] = "sha256=" + sign(bad)
    err = refused(hook, headers, bad)
    assert err.status == 400 and "not valid JSON" in err.reason
    payload = fixture("github_push")
    del payload["repository"]["html_url"]
    err = refused(*github("push", payload))
    assert err.status == 400 and "repository.html_url" in err.reason
    payload = fixture("github_push")
    payload["commits"][1]["author"] = "nobody"
    err = refused(*github("push", payload))
    assert err.status == 400 and "'author' must be a dict" in err.reason
    hook, headers, body = github("push", fixture("github_push"))
    del headers["x-github-event"]
    err = refused(hook, headers, body)
    assert err.status == 400 and "X-GitHub-Event" in err.reason
    err = refused(*github("push", [1, 2]))  # type: ignore[arg-type]
    assert err.status == 400 and "JSON object" in err.reason


# --------------------------------------------------------------------------- GitLab


def gitlab(event: str, payload: dict[str, Any], token: str | None = SECRET) -> tuple[GitLabHook, dict[str, str], bytes]:
    headers = {"x-gitlab-event": event, "x-gitlab-event-uuid": "a6a1b4a5-4f8e-4f9e-b7a3-0f2d0a1e1c2b"}
    if token is not None:
        headers["x-gitlab-token"] = token
    return GitLabHook({"secret": SECRET}), headers, body_of(payload)


def test_gitlab_push() -> None:
    parsed = deliver(*gitlab("Push Hook", fixture("gitlab_push")))
    first, second = parsed.changes
    assert first.revision == "b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327"
    assert first.author == "Jordi Mallach <jordi@softcatala.org>"
    assert first.files == ["CHANGELOG", "app/controller/application.rb"]
    assert second.files == ["README.md", "old/notes.txt"]
    assert first.branch == "master" and first.category == "push"
    assert first.repository == "git@example.com:mike/diaspora.git"
    assert first.project == "mike/diaspora"
    assert first.revlink.endswith("/commit/b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327")
    assert first.when == 1323692851.0  # 2011-12-12T14:27:31+02:00


def test_gitlab_tag_push_is_the_tagged_commit() -> None:
    [change] = deliver(*gitlab("Tag Push Hook", fixture("gitlab_tag_push"))).changes
    assert (change.branch, change.category, change.revision) == (
        "v1.0.0", "tag", "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7")
    assert change.author == "John Smith <john@example.com>"
    assert change.properties["event"] == "tag_push"


def test_gitlab_branch_deletion_stores_nothing() -> None:
    payload = fixture("gitlab_push")
    payload.update(after="0" * 40, checkout_sha=None, commits=[])
    assert deliver(*gitlab("Push Hook", payload)).changes == []


def test_gitlab_merge_request() -> None:
    [change] = deliver(*gitlab("Merge Request Hook", fixture("gitlab_merge_request"))).changes
    assert change.revision == "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"
    assert change.branch == "master"  # Buildbot's GitLab hook: the target branch
    assert change.category == "pull"
    assert change.repository == "http://example.com/awesome_space/awesome_project.git"
    assert change.comments == "MR#1: MS-Viewport\n\nMake the viewport work on phones."
    assert change.properties["source_branch"] == "ms-viewport"
    assert change.properties["merge_request_ref"] == "refs/merge-requests/1/head"


@pytest.mark.parametrize(("changes", "builds"), [
    ({"action": "reopen"}, True),
    ({"action": "update", "oldrev": "95790bf891e76fee5e1747ab589903a6a1f80f22"}, True),
    ({"action": "update"}, False),  # title or labels edited: no new code
    ({"action": "close", "state": "closed"}, False),
    ({"action": "merge", "state": "merged"}, False),
])
def test_gitlab_merge_request_actions(changes: dict[str, str], builds: bool) -> None:
    payload = fixture("gitlab_merge_request")
    payload["object_attributes"].update(changes)
    assert bool(deliver(*gitlab("Merge Request Hook", payload)).changes) is builds


def test_gitlab_token() -> None:
    assert refused(*gitlab("Push Hook", fixture("gitlab_push"), token=None)).status == 401
    assert refused(*gitlab("Push Hook", fixture("gitlab_push"), token="guess")).status == 403
    assert deliver(*gitlab("Note Hook", {"object_kind": "note"})).changes == []


# --------------------------------------------------------------------------- Gitea


def gitea(event: str, payload: dict[str, Any], signature: str | None = "") -> tuple[GiteaHook, dict[str, str], bytes]:
    body = body_of(payload)
    headers = {"x-gitea-event": event, "x-gitea-delivery": "f6266f16-1bf3-46a5-9ea4-602e06ead473"}
    if signature is not None:
        headers["x-gitea-signature"] = signature or sign(body)
    return GiteaHook({"secret": SECRET}), headers, body


def test_gitea_push_oldest_commit_first() -> None:
    parsed = deliver(*gitea("push", fixture("gitea_push")))
    assert [c.revision for c in parsed.changes] == [
        "28e1879d029cb852e4844d9c718537df08844e03", "bffeb74224043ba2feb48d137756c8a9331c449a"]
    newest = parsed.changes[-1]
    assert newest.author == "Gitea <someone@gitea.io>"
    assert newest.files == ["hooks.md", "README.md"]
    assert newest.branch == "develop" and newest.category == "push"
    assert newest.repository == "ssh://gitea@localhost:2222/gitea/webhooks.git"
    assert newest.project == "gitea/webhooks"
    assert newest.properties == {"event": "push", "repository_name": "webhooks", "owner": "gitea"}


def test_gitea_pull_request() -> None:
    [change] = deliver(*gitea("pull_request", fixture("gitea_pull_request"))).changes
    assert change.revision == "9c7b3d5e2f1a0b8c7d6e5f4a3b2c1d0e9f8a7b6c"
    assert change.branch == "docs"
    assert change.author == "Alice Liddell <alice@example.org>"
    assert change.category == "pull"
    assert change.properties["head_repository"] == "http://localhost:3000/alice/webhooks.git"
    assert change.properties["pr_number"] == 7
    payload = fixture("gitea_pull_request")
    payload["action"] = "synchronized"
    assert deliver(*gitea("pull_request", payload)).changes
    payload["action"] = "closed"
    assert deliver(*gitea("pull_request", payload)).changes == []


def test_gitea_signature() -> None:
    assert refused(*gitea("push", fixture("gitea_push"), signature=None)).status == 401
    assert refused(*gitea("push", fixture("gitea_push"), signature="00" * 32)).status == 403


# --------------------------------------------------------------------------- settings


def test_idempotency_key_is_bounded() -> None:
    assert idempotency_key("github", "") == ""
    assert idempotency_key("github", "abc") == "webhook:github:abc"
    assert len(idempotency_key("gitlab", "x" * 500)) <= 128


def test_www_settings() -> None:
    s = web_settings({"port": 8010, "change_hook_dialects": {"github": {"secret": "s", "strict": True},
                                                             "gitlab": {"secret": "t"}}})
    assert s.errors == [] and (s.host, s.port) == ("0.0.0.0", 8010)
    assert sorted(s.dialects) == ["github", "gitlab"]
    s = web_settings({"port": "tcp:8011:interface=127.0.0.1", "change_hook_dialects": {"gitea": True}})
    assert s.errors == [] and (s.host, s.port) == ("127.0.0.1", 8011)
    assert not web_settings(None).enabled
    override_address(s, "127.0.0.1:0")
    assert (s.host, s.port, s.enabled) == ("127.0.0.1", 0, True)
    with pytest.raises(ValueError, match="HOST:PORT"):
        override_address(s, "localhost")


@pytest.mark.parametrize(("www", "message"), [
    ({"port": "eighty"}, "port must be a number"),
    ({"prot": 8010}, "unknown key(s) 'prot'"),
    ({"change_hook_dialects": {"bitbucket": {}}}, "unknown change hook dialect 'bitbucket'"),
    ({"change_hook_dialects": {"github": {"strict": True}}}, "strict=True needs a secret"),
    ({"change_hook_dialects": {"github": {"secret": "s", "sekret": "t"}}}, "unknown option(s) 'sekret'"),
    ({"change_hook_dialects": {"gitlab": {"secret": 42}}}, "secret must be a non-empty string or a Path"),
    ({"change_hook_dialects": {"gitea": "s3cret"}}, "must be a dict"),
    ("8010", "www must be a dict"),
])
def test_www_mistakes(www: Any, message: str) -> None:
    assert any(message in e for e in web_settings(www).errors), web_settings(www).errors


def test_secret_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "gh.secret").write_text(SECRET + "\n")
    hook = GitHubHook({"secret": tmp_path / "gh.secret"})
    assert hook.errors == [] and hook.secret == SECRET
    assert "cannot read the secret" in GitHubHook({"secret": tmp_path / "missing"}).errors[0]


def test_buildbot_style_dict_takes_www(tmp_path: Path) -> None:
    path = tmp_path / "master.py"
    path.write_text("BuildmasterConfig = {'www': dict(port=8010, change_hook_dialects={'gitea': {'secret': 's'}})}\n")
    assert load_config(path).www == {"port": 8010, "change_hook_dialects": {"gitea": {"secret": "s"}}}


def test_checkconfig_reports_www_mistakes_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "master.py"
    path.write_text(textwrap.dedent("""\
        from coordinator.config import *

        config = MasterConfig(
            www=dict(port=8010, change_hook_dialects={"github": {"strict": True}}),
        )
    """))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    [problem] = info.value.problems
    assert (problem.file, problem.line) == (str(path), 3)
    assert "change hook 'github': strict=True needs a secret" in problem.message
