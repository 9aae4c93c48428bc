"""GitLab's webhooks, as Buildbot's ``gitlab`` change hook reads them.

Authentication: ``X-Gitlab-Token`` equal to the configured secret (GitLab's "Secret token").
Events (``X-Gitlab-Event``, or the payload's ``object_kind``): ``Push Hook``, ``Tag Push Hook``
and ``Merge Request Hook``; others are answered and ignored.
"""

from __future__ import annotations

import hmac
from typing import Any

from coordinator.domain.model import Change
from coordinator.web.hooks.base import (
    Dialect,
    Headers,
    HookError,
    Parsed,
    comments,
    get,
    load_json,
    person,
    push_changes,
    split_ref,
    timestamp,
)

EVENTS = {"Push Hook": "push", "Tag Push Hook": "tag_push", "Merge Request Hook": "merge_request"}


class GitLabHook(Dialect):
    name = "gitlab"
    # GitLab >= 17.4 sends Idempotency-Key (stable across retries); older ones the event UUID.
    delivery_headers = ("idempotency-key", "x-gitlab-event-uuid")

    def verify(self, headers: Headers, body: bytes) -> None:
        if not self.secret:
            return
        given = headers.get("x-gitlab-token")
        if not given:
            raise HookError(401, "missing X-Gitlab-Token header: this hook is configured with a secret")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            raise HookError(403, "X-Gitlab-Token is not this hook's secret")

    def parse(self, headers: Headers, body: bytes) -> Parsed:
        header = headers.get("x-gitlab-event", "").strip()
        payload = load_json(body)
        kind = payload.get("object_kind") or EVENTS.get(header, "")
        if not kind and not header:
            raise HookError(400, "missing X-Gitlab-Event header (and no object_kind in the payload)")
        if kind in ("push", "tag_push"):
            return self._push(payload, kind)
        if kind == "merge_request":
            return self._merge_request(payload, kind)
        return Parsed(ignored=f"event {header or kind!r} is not handled (pushes and merge requests are)")

    def _push(self, payload: dict[str, Any], event: str) -> Parsed:
        ref = get(payload, "ref")
        split = split_ref(ref)
        commits = get(payload, "commits", list, [])
        if split and split[0] == "tags" and payload.get("checkout_sha"):
            # A tag push lists no commits; the change is the tagged commit.
            sha = get(payload, "checkout_sha")
            known = [c for c in commits if isinstance(c, dict) and c.get("id") == sha]
            payload = {**payload, "head_commit": known[0] if known else {
                "id": sha,
                "author": {"name": payload.get("user_name") or payload.get("user_username") or "",
                           "email": payload.get("user_email") or ""},
                "message": payload.get("message") or f"tag {split[1]}",
            }}
        else:
            # Buildbot's GitLab hook skips commits already seen on another branch.
            payload = {**payload, "commits": [c for c in commits
                                              if not isinstance(c, dict) or c.get("distinct", True)]}
        return push_changes(
            payload,
            repository=get(payload, "repository.url"),
            project=get(payload, "project.path_with_namespace", str, "") or get(payload, "repository.name"),
            codebase=self.codebase_for(payload),
            event=event,
            properties={},
            created_head_only=False,
        )

    def _merge_request(self, payload: dict[str, Any], event: str) -> Parsed:
        attrs = get(payload, "object_attributes", dict)
        iid = get(attrs, "iid", int)
        state = get(attrs, "state", str, "")
        action = get(attrs, "action", str, "")
        if state in ("closed", "merged", "approved"):
            return Parsed(ignored=f"merge request !{iid} is {state}")
        if action not in ("open", "reopen") and not (action == "update" and "oldrev" in attrs):
            return Parsed(ignored=f"merge request !{iid} {action or 'event'}: only open, reopen and "
                                  "an update that adds commits build")
        commit = get(attrs, "last_commit", dict)
        change = Change(
            author=person(get(commit, "author", dict)),
            comments=comments(f"MR#{iid}: {get(attrs, 'title', str, '')}\n\n{attrs.get('description') or ''}"),
            revision=get(commit, "id"),
            branch=get(attrs, "target_branch"),
            repository=get(attrs, "target.git_http_url"),
            project=get(attrs, "target.path_with_namespace", str, "") or get(attrs, "target.name"),
            codebase=self.codebase_for(payload),
            category="pull",
            when=timestamp(commit.get("timestamp")),
            revlink=get(attrs, "url", str, ""),
            properties={
                "event": event,
                "merge_request_iid": iid,
                "merge_request_ref": f"refs/merge-requests/{iid}/head",
                "title": get(attrs, "title", str, ""),
                "source_branch": get(attrs, "source_branch"),
                "source_project_id": get(attrs, "source_project_id", int, 0),
                "source_repository": get(attrs, "source.git_http_url"),
                "source_git_ssh_url": get(attrs, "source.git_ssh_url", str, ""),
                "target_branch": get(attrs, "target_branch"),
                "target_project_id": get(attrs, "target_project_id", int, 0),
                "target_repository": get(attrs, "target.git_http_url"),
                "target_git_ssh_url": get(attrs, "target.git_ssh_url", str, ""),
            },
        )
        return Parsed([change])
