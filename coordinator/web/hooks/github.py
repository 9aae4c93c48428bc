"""GitHub's webhooks, as Buildbot's ``github`` change hook reads them.

Signature: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`` (the legacy SHA-1
``X-Hub-Signature`` is accepted when it is the only one). Events (``X-GitHub-Event``): ``ping``
(answered, no change), ``push`` and ``pull_request``; others are answered and ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import re
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
    push_changes,
    timestamp,
)

# Buildbot's default: a head commit saying [ci skip] or [skip ci] builds nothing.
DEFAULT_SKIPS = (r"\[ *skip *ci *\]", r"\[ *ci *skip *\]")
PR_ACTIONS = ("opened", "reopened", "synchronize")
# Pull request fields made properties, named as Buildbot's github.<flattened key> ones.
PR_PROPERTIES = (
    "number", "title", "html_url", "user.login", "head.ref", "head.sha", "head.repo.full_name",
    "head.repo.clone_url", "base.ref", "base.sha", "base.repo.full_name", "base.repo.clone_url",
)


class GitHubHook(Dialect):
    name = "github"
    known_options = frozenset({"secret", "strict", "codebase", "pullrequest_ref", "skips"})
    delivery_headers = ("x-github-delivery",)

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.strict = self.options.get("strict", False)
        if not isinstance(self.strict, bool):
            self.errors.append(f"strict must be True or False, not {self.strict!r}")
        elif self.strict and not self.secret:
            self.errors.append("strict=True needs a secret (GitHub signs deliveries with it)")
        self.pullrequest_ref = self.options.get("pullrequest_ref", "merge")
        if self.pullrequest_ref not in ("merge", "head"):
            self.errors.append(f"pullrequest_ref must be 'merge' or 'head', not {self.pullrequest_ref!r}")
        skips = self.options.get("skips", DEFAULT_SKIPS)
        try:
            self.skips = [re.compile(s) for s in skips]
        except (TypeError, re.error) as exc:
            self.errors.append(f"skips must be a list of regular expressions: {exc}")
            self.skips = []

    def verify(self, headers: Headers, body: bytes) -> None:
        sig256 = headers.get("x-hub-signature-256")
        legacy = headers.get("x-hub-signature")
        if self.secret and not sig256 and legacy:
            self._check_sha1(legacy, body)
            return
        self.check_hmac_sha256("X-Hub-Signature-256", sig256, body, prefix="sha256=")

    def _check_sha1(self, given: str, body: bytes) -> None:
        if not given.startswith("sha1="):
            raise HookError(403, "X-Hub-Signature must look like sha1=<hex digest>")
        expected = hmac.new(self.secret.encode(), body, hashlib.sha1).hexdigest()
        if not hmac.compare_digest(expected, given[5:].strip().lower()):
            raise HookError(403, "X-Hub-Signature does not match the body: check the secret")

    def parse(self, headers: Headers, body: bytes) -> Parsed:
        event = headers.get("x-github-event", "").strip()
        if not event:
            raise HookError(400, "missing X-GitHub-Event header")
        payload = load_json(body, headers.get("content-type", "application/json"))
        if event == "ping":
            return Parsed(ignored="pong")
        if event == "push":
            return self._push(payload, event)
        if event == "pull_request":
            return self._pull_request(payload, event)
        return Parsed(ignored=f"event {event!r} is not handled (push and pull_request are)")

    def _push(self, payload: dict[str, Any], event: str) -> Parsed:
        head = payload.get("head_commit")
        message = str(head.get("message") or "") if isinstance(head, dict) else ""
        if any(s.search(message) for s in self.skips):
            return Parsed(ignored="the head commit asks to skip CI")
        return push_changes(
            payload,
            repository=get(payload, "repository.html_url"),
            project=get(payload, "repository.full_name"),
            codebase=self.codebase_for(payload),
            event=event,
            properties={},
        )

    def _pull_request(self, payload: dict[str, Any], event: str) -> Parsed:
        number = get(payload, "number", int)
        action = get(payload, "action")
        if action not in PR_ACTIONS:
            return Parsed(ignored=f"pull request #{number} {action}: only {', '.join(PR_ACTIONS)} build")
        pr = get(payload, "pull_request", dict)
        revlink = get(pr, "html_url", str, "") or get(pr, "_links.html.href", str, "")
        commits = get(pr, "commits", int, 0)
        title = get(pr, "title", str, "")
        properties: dict[str, Any] = {
            "event": event,
            "pullrequesturl": revlink,
            "basename": get(pr, "base.ref"),
        }
        for key in PR_PROPERTIES:
            value = get(pr, key, (str, int), None)
            if value is not None:
                properties[f"github.{key}"] = value
        change = Change(
            author=get(payload, "sender.login"),
            comments=comments(
                f"GitHub Pull Request #{number} ({commits} commit{'s' if commits != 1 else ''})\n"
                f"{title}\n{pr.get('body') or ''}"
            ),
            revision=get(pr, "head.sha"),
            branch=f"refs/pull/{number}/{self.pullrequest_ref}",
            repository=get(payload, "repository.html_url"),
            project=get(pr, "base.repo.full_name"),
            codebase=self.codebase_for(payload),
            category="pull",
            when=timestamp(pr.get("created_at")),
            revlink=revlink,
            properties=properties,
        )
        return Parsed([change])
