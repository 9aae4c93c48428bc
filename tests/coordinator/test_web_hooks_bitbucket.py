"""The Bitbucket Cloud and Bitbucket Server webhook dialects on payloads shaped like the
documented examples (tests/coordinator/webhooks/bitbucket*.json): pushes, pull requests,
deletions, the X-Hub-Signature check and the delivery ids redeliveries are recognised by."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest

from coordinator.web.hooks import BitbucketCloudHook, BitbucketServerHook, HookError
from coordinator.web.hooks.base import Dialect, Parsed
from coordinator.web.settings import web_settings

FIXTURES = Path(__file__).parent / "webhooks"
SECRET = "bb-s3cret"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def delivery(hook: type[Dialect], event: str, payload: dict[str, Any], signature: str | None = "",
             **options: Any) -> tuple[Dialect, dict[str, str], bytes]:
    body = json.dumps(payload).encode()
    headers = {"x-event-key": event, "x-request-uuid": "3b2e1f0a", "x-request-id": "7f3c9d"}
    if signature is not None:
        digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers["x-hub-signature"] = signature or f"sha256={digest}"
    return hook({"secret": SECRET, **options}), headers, body


def deliver(hook: Dialect, headers: dict[str, str], body: bytes) -> Parsed:
    hook.verify(headers, body)
    return hook.parse(headers, body)


def refused(hook: Dialect, headers: dict[str, str], body: bytes) -> HookError:
    with pytest.raises(HookError) as info:
        deliver(hook, headers, body)
    return info.value


def test_cloud_push_is_each_pushed_refs_head() -> None:
    parsed = deliver(*delivery(BitbucketCloudHook, "repo:push", fixture("bitbucketcloud_push")))
    branch, tag = parsed.changes  # the deleted branch stores nothing
    assert (branch.branch, branch.category, tag.branch, tag.category) == ("main", "push", "v1.0", "tag")
    assert branch.revision == "709d658dc5b6d6afcd46049c2f332ee3f515a67d"
    assert branch.author == "Emma <emma@example.org>" and branch.comments == "Fix the frobnicator\n"
    assert branch.repository == "https://bitbucket.org/octo/hello" and branch.project == "octo/hello"
    assert branch.revlink.endswith("/commits/709d658dc5b6d6afcd46049c2f332ee3f515a67d")
    assert branch.properties == {"event": "repo:push", "repository_name": "hello"}
    payload = fixture("bitbucketcloud_push")
    payload["push"]["changes"] = payload["push"]["changes"][1:2]
    assert deliver(*delivery(BitbucketCloudHook, "repo:push", payload)).ignored == \
        "nothing to build: a deleted branch or tag"


def test_cloud_pull_request() -> None:
    pull = fixture("bitbucketcloud_pullrequest")
    [change] = deliver(*delivery(BitbucketCloudHook, "pullrequest:created", pull)).changes
    assert (change.revision, change.branch, change.category) == ("d3adb33f0123", "faster", "pull")
    assert change.repository == "https://bitbucket.org/emma/hello"
    assert change.comments == "PR#12: Faster frobnication\n\nCaches the frobs."
    assert change.properties["pr_number"] == 12 and change.properties["base_branch"] == "main"
    assert change.properties["pullrequesturl"] == "https://bitbucket.org/octo/hello/pull-requests/12"
    payload = fixture("bitbucketcloud_pullrequest")
    payload["pullrequest"]["state"] = "MERGED"
    assert deliver(*delivery(BitbucketCloudHook, "pullrequest:updated", payload)).ignored == \
        "pull request #12 is merged"
    assert "not handled" in deliver(*delivery(BitbucketCloudHook, "pullrequest:approved", payload)).ignored


def test_server_refs_changed_and_pull_request() -> None:
    [change] = deliver(*delivery(BitbucketServerHook, "repo:refs_changed",
                                 fixture("bitbucketserver_refs_changed"))).changes
    assert (change.revision, change.branch) == ("178864a7d521b6f5e720b386b2c2b0ef8563e0dc", "main")
    assert change.repository == "https://bitbucket.example.org/scm/prj/hello.git"
    assert change.author == "Administrator <admin@example.org>" and change.project == "PRJ/hello"
    [pr] = deliver(*delivery(BitbucketServerHook, "pr:opened", fixture("bitbucketserver_pr_opened"))).changes
    assert (pr.revision, pr.branch, pr.category) == ("ef8755f06ee4b28c96a847a95cb8ec8ed6ddd1ca", "feature", "pull")
    assert pr.properties["base_branch"] == "main" and pr.properties["pr_number"] == 9
    assert pr.when == 1714644000.0
    assert deliver(*delivery(BitbucketServerHook, "diagnostics:ping", {})).ignored == "pong"


@pytest.mark.parametrize("hook", [BitbucketCloudHook, BitbucketServerHook])
def test_refusals(hook: type[Dialect]) -> None:
    payload = fixture("bitbucketserver_refs_changed")
    assert refused(*delivery(hook, "repo:refs_changed", payload, signature=None)).status == 401
    assert refused(*delivery(hook, "repo:refs_changed", payload, signature="sha256=" + "0" * 64)).status == 403
    assert refused(*delivery(hook, "repo:refs_changed", payload, signature="md5=x")).status == 403
    h, headers, body = delivery(hook, "", payload)
    assert refused(h, headers, body).status == 400 and "X-Event-Key" in refused(h, headers, body).reason
    h, headers, _ = delivery(hook, "repo:push", payload)
    body = b"{not json"
    headers["x-hub-signature"] = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert refused(h, headers, body).status == 400


def test_missing_fields_say_which() -> None:
    payload = fixture("bitbucketcloud_push")
    del payload["push"]["changes"][0]["new"]["target"]["hash"]
    error = refused(*delivery(BitbucketCloudHook, "repo:push", payload))
    assert (error.status, error.reason) == (400, "the payload has no 'hash'")


def test_delivery_ids_and_settings() -> None:
    h, headers, _ = delivery(BitbucketCloudHook, "repo:push", {})
    assert h.delivery_id(headers) == "3b2e1f0a"
    h, headers, _ = delivery(BitbucketServerHook, "repo:refs_changed", {})
    assert h.delivery_id(headers) == "7f3c9d"
    s = web_settings({"port": 8010, "change_hook_dialects": {"bitbucketcloud": {"secret": "s"},
                                                             "bitbucketserver": {}}})
    assert s.errors == [] and sorted(s.dialects) == ["bitbucketcloud", "bitbucketserver"]
