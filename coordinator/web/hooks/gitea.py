"""Gitea's (and Forgejo's) webhooks, as the buildbot-gitea plugin's ``gitea`` hook reads them.

Signature: ``X-Gitea-Signature: <hex HMAC-SHA256 of the body>`` (Forgejo's
``X-Forgejo-Signature`` too). Events (``X-Gitea-Event``): ``push`` and ``pull_request``; others
are answered and ignored.
"""

from __future__ import annotations

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
    timestamp,
)

# Gitea says "synchronized" where GitHub says "synchronize"; both are accepted.
PR_ACTIONS = ("opened", "reopened", "synchronized", "synchronize")


class GiteaHook(Dialect):
    name = "gitea"
    delivery_headers = ("x-gitea-delivery", "x-forgejo-delivery")

    def verify(self, headers: Headers, body: bytes) -> None:
        if headers.get("x-gitea-signature") or not headers.get("x-forgejo-signature"):
            self.check_hmac_sha256("X-Gitea-Signature", headers.get("x-gitea-signature"), body)
        else:
            self.check_hmac_sha256("X-Forgejo-Signature", headers.get("x-forgejo-signature"), body)

    def parse(self, headers: Headers, body: bytes) -> Parsed:
        event = (headers.get("x-gitea-event") or headers.get("x-forgejo-event") or "").strip()
        if not event:
            raise HookError(400, "missing X-Gitea-Event header")
        payload = load_json(body)
        if event == "push":
            return self._push(payload, event)
        if event == "pull_request":
            return self._pull_request(payload, event)
        return Parsed(ignored=f"event {event!r} is not handled (push and pull_request are)")

    def _push(self, payload: dict[str, Any], event: str) -> Parsed:
        # Gitea lists the newest commit first; changes are stored oldest first, so the
        # newest is the one a scheduler builds.
        payload = {**payload, "commits": list(reversed(get(payload, "commits", list, [])))}
        return push_changes(
            payload,
            repository=get(payload, "repository.ssh_url"),
            project=get(payload, "repository.full_name"),
            codebase=self.codebase_for(payload),
            event=event,
            properties={
                "repository_name": get(payload, "repository.name"),
                "owner": get(payload, "repository.owner.username", str, ""),
            },
            created_head_only=False,
        )

    def _pull_request(self, payload: dict[str, Any], event: str) -> Parsed:
        number = get(payload, "number", int)
        action = get(payload, "action")
        if action not in PR_ACTIONS:
            return Parsed(ignored=f"pull request #{number} {action}: only opened, reopened and "
                                  "synchronized build")
        pr = get(payload, "pull_request", dict)
        if pr.get("merged"):
            return Parsed(ignored=f"pull request #{number} is already merged")
        head, base = get(pr, "head", dict), get(pr, "base", dict)
        change = Change(
            author=person(get(pr, "user", dict), name_key="full_name"),
            comments=comments(f"PR#{number}: {get(pr, 'title', str, '')}\n\n{pr.get('body') or ''}"),
            revision=get(head, "sha"),
            branch=get(head, "ref"),
            repository=get(payload, "repository.ssh_url"),
            project=get(payload, "repository.full_name"),
            codebase=self.codebase_for(payload),
            category="pull",
            when=timestamp(pr.get("updated_at")),
            revlink=get(pr, "html_url", str, ""),
            properties={
                "event": event,
                "pr_number": number,
                "pr_id": get(pr, "id", int, 0),
                "title": get(pr, "title", str, ""),
                "base_branch": get(base, "ref"),
                "base_sha": get(base, "sha", str, ""),
                "base_repository": get(base, "repo.clone_url", str, ""),
                "base_git_ssh_url": get(base, "repo.ssh_url", str, ""),
                "head_branch": get(head, "ref"),
                "head_sha": get(head, "sha"),
                "head_repository": get(head, "repo.clone_url", str, ""),
                "head_git_ssh_url": get(head, "repo.ssh_url", str, ""),
                "repository_name": get(payload, "repository.name"),
                "owner": get(payload, "repository.owner.username", str, ""),
            },
        )
        return Parsed([change])
