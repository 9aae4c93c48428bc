"""Bitbucket Cloud's and Bitbucket Server's (Data Center) webhooks, as Buildbot's
``bitbucketcloud`` and ``bitbucketserver`` change hooks read them.

Signature (both, when the webhook has a secret): ``X-Hub-Signature: sha256=<hex HMAC-SHA256 of
the body>``. The event is the ``X-Event-Key`` header:

* Cloud (https://support.atlassian.com/bitbucket-cloud/docs/event-payloads/): ``repo:push``
  (one change per pushed branch or tag: its new head commit, as Buildbot does),
  ``pullrequest:created`` and ``pullrequest:updated`` (the source branch's head); deliveries are
  identified by ``X-Request-UUID``.
* Server (https://confluence.atlassian.com/bitbucketserver/event-payload-938025882.html):
  ``repo:refs_changed``, ``pr:opened``, ``pr:from_ref_updated`` (and ``diagnostics:ping``,
  answered); deliveries are identified by ``X-Request-Id``.

Other events are answered and ignored; a deleted branch or tag stores nothing.
"""

from __future__ import annotations

from typing import Any

from coordinator.domain.model import Change
from coordinator.web.hooks.base import Dialect, Headers, HookError, Parsed, comments, get, load_json, timestamp

CLOUD_PR_EVENTS = ("pullrequest:created", "pullrequest:updated")
SERVER_PR_EVENTS = ("pr:opened", "pr:from_ref_updated")


class _Bitbucket(Dialect):
    def verify(self, headers: Headers, body: bytes) -> None:
        self.check_hmac_sha256("X-Hub-Signature", headers.get("x-hub-signature"), body, prefix="sha256=")

    def event(self, headers: Headers) -> str:
        event = headers.get("x-event-key", "").strip()
        if not event:
            raise HookError(400, "missing X-Event-Key header")
        return event


class BitbucketCloudHook(_Bitbucket):
    name = "bitbucketcloud"
    delivery_headers = ("x-request-uuid",)

    def parse(self, headers: Headers, body: bytes) -> Parsed:
        event = self.event(headers)
        payload = load_json(body)
        if event == "repo:push":
            return self._push(payload, event)
        if event in CLOUD_PR_EVENTS:
            return self._pull_request(payload, event)
        return Parsed(ignored=f"event {event!r} is not handled (repo:push and pullrequest:created/updated are)")

    def _repo(self, payload: dict[str, Any]) -> tuple[str, str]:
        return get(payload, "repository.links.html.href"), get(payload, "repository.full_name")

    def _push(self, payload: dict[str, Any], event: str) -> Parsed:
        repository, project = self._repo(payload)
        changes, skipped = [], []
        for i, ref in enumerate(get(payload, "push.changes", list)):
            if not isinstance(ref, dict):
                raise HookError(400, f"the payload's 'push.changes.{i}' must be an object")
            new = ref.get("new")
            if not isinstance(new, dict):
                skipped.append("a deleted branch or tag")
                continue
            kind = get(new, "type")
            if kind not in ("branch", "tag"):
                skipped.append(f"a {kind}")
                continue
            target = get(new, "target", dict)
            changes.append(Change(
                author=get(target, "author.raw", str, "") or get(payload, "actor.display_name", str, ""),
                comments=comments(target.get("message")),
                revision=get(target, "hash"),
                branch=get(new, "name"),
                repository=repository,
                project=project,
                codebase=self.codebase_for(payload),
                category="tag" if kind == "tag" else "push",
                when=timestamp(target.get("date")),
                revlink=get(target, "links.html.href", str, ""),
                properties={"event": event, "repository_name": get(payload, "repository.name", str, "")},
            ))
        if not changes:
            return Parsed(ignored="nothing to build: " + (", ".join(skipped) or "no changes pushed"))
        return Parsed(changes)

    def _pull_request(self, payload: dict[str, Any], event: str) -> Parsed:
        repository, project = self._repo(payload)
        pr = get(payload, "pullrequest", dict)
        number = get(pr, "id", int)
        if get(pr, "state", str, "OPEN") != "OPEN":
            return Parsed(ignored=f"pull request #{number} is {pr['state'].lower()}")
        source = get(pr, "source", dict)
        change = Change(
            author=get(pr, "author.display_name", str, ""),
            comments=comments(f"PR#{number}: {get(pr, 'title', str, '')}\n\n{pr.get('description') or ''}"),
            revision=get(source, "commit.hash"),
            branch=get(source, "branch.name"),
            repository=get(source, "repository.links.html.href", str, repository),
            project=project,
            codebase=self.codebase_for(payload),
            category="pull",
            when=timestamp(pr.get("updated_on")),
            revlink=get(pr, "links.html.href", str, ""),
            properties={
                "event": event,
                "pullrequesturl": get(pr, "links.html.href", str, ""),
                "pr_number": number,
                "title": get(pr, "title", str, ""),
                "base_branch": get(pr, "destination.branch.name", str, ""),
                "base_repository": get(pr, "destination.repository.links.html.href", str, repository),
                "head_branch": get(source, "branch.name"),
                "head_repository": get(source, "repository.full_name", str, project),
            },
        )
        return Parsed([change])


class BitbucketServerHook(_Bitbucket):
    name = "bitbucketserver"
    delivery_headers = ("x-request-id",)

    def parse(self, headers: Headers, body: bytes) -> Parsed:
        event = self.event(headers)
        if event == "diagnostics:ping":
            return Parsed(ignored="pong")
        payload = load_json(body)
        if event == "repo:refs_changed":
            return self._refs_changed(payload, event)
        if event in SERVER_PR_EVENTS:
            return self._pull_request(payload, event)
        return Parsed(ignored=f"event {event!r} is not handled (repo:refs_changed, pr:opened and "
                              "pr:from_ref_updated are)")

    @staticmethod
    def clone_url(repo: Any) -> str:
        """The repository's http clone URL (else ssh, else its browse page)."""
        links = repo.get("links") if isinstance(repo, dict) else None
        clones = links.get("clone", []) if isinstance(links, dict) else []
        by_name = {c.get("name"): c.get("href") for c in clones if isinstance(c, dict)}
        found = by_name.get("http") or by_name.get("ssh")
        if isinstance(found, str) and found:
            return found
        selfs = links.get("self", []) if isinstance(links, dict) else []
        href = selfs[0].get("href", "") if selfs and isinstance(selfs[0], dict) else ""
        return str(href).removesuffix("browse").rstrip("/")

    @staticmethod
    def project_of(repo: dict[str, Any]) -> str:
        return f"{get(repo, 'project.key', str, '')}/{get(repo, 'slug')}"

    def _refs_changed(self, payload: dict[str, Any], event: str) -> Parsed:
        repo = get(payload, "repository", dict)
        actor = get(payload, "actor", dict, {})
        author = _person(actor)
        changes, skipped = [], []
        for i, ref in enumerate(get(payload, "changes", list)):
            if not isinstance(ref, dict):
                raise HookError(400, f"the payload's 'changes.{i}' must be an object")
            kind = get(ref, "ref.type")
            if get(ref, "type") == "DELETE":
                skipped.append(f"{kind.lower()} {get(ref, 'ref.displayId')} was deleted")
                continue
            if kind not in ("BRANCH", "TAG"):
                skipped.append(f"a {kind}")
                continue
            revision = get(ref, "toHash")
            changes.append(Change(
                author=author,
                comments=f"Bitbucket Server commit {revision}",
                revision=revision,
                branch=get(ref, "ref.displayId"),
                repository=self.clone_url(repo),
                project=self.project_of(repo),
                codebase=self.codebase_for(payload),
                category="tag" if kind == "TAG" else "push",
                when=timestamp(payload.get("date")),
                properties={"event": event, "repository_name": get(repo, "slug")},
            ))
        if not changes:
            return Parsed(ignored="nothing to build: " + (", ".join(skipped) or "no refs changed"))
        return Parsed(changes)

    def _pull_request(self, payload: dict[str, Any], event: str) -> Parsed:
        pr = get(payload, "pullRequest", dict)
        number = get(pr, "id", int)
        if get(pr, "state", str, "OPEN") != "OPEN":
            return Parsed(ignored=f"pull request #{number} is {pr['state'].lower()}")
        source, target = get(pr, "fromRef", dict), get(pr, "toRef", dict)
        links = get(pr, "links.self", list, [])
        url = str(links[0].get("href", "")) if links and isinstance(links[0], dict) else ""
        updated = pr.get("updatedDate")
        change = Change(
            author=_person(get(pr, "author.user", dict, {})),
            comments=comments(f"PR#{number}: {get(pr, 'title', str, '')}\n\n{pr.get('description') or ''}"),
            revision=get(source, "latestCommit"),
            branch=get(source, "displayId"),
            repository=self.clone_url(get(source, "repository", dict)),
            project=self.project_of(get(target, "repository", dict)),
            codebase=self.codebase_for(payload),
            category="pull",
            when=updated / 1000 if isinstance(updated, int) else 0.0,
            revlink=url,
            properties={
                "event": event,
                "pullrequesturl": url,
                "pr_number": number,
                "title": get(pr, "title", str, ""),
                "base_branch": get(target, "displayId"),
                "base_sha": get(target, "latestCommit", str, ""),
                "base_repository": self.clone_url(get(target, "repository", dict)),
                "head_branch": get(source, "displayId"),
                "head_sha": get(source, "latestCommit"),
                "head_repository": self.clone_url(get(source, "repository", dict)),
            },
        )
        return Parsed([change])


def _person(user: dict[str, Any]) -> str:
    name = str(user.get("displayName") or user.get("name") or "").strip()
    email = str(user.get("emailAddress") or "").strip()
    return f"{name} <{email}>" if name and email else name or (f"<{email}>" if email else "")
