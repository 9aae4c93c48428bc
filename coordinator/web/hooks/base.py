"""What every webhook dialect shares: the answer it gives, payload field access with clear
errors, signatures, timestamps and the ref names of pushes."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import parse_qs

from coordinator.domain.model import Change

ZERO_SHA = re.compile(r"^0+$")
REF = re.compile(r"^refs/(heads|tags)/(.+)$")
COMMENTS_LIMIT = 64 * 1024  # what coordinator.domain.changes.validation lets a change hold


class HookError(Exception):
    """A delivery refused with an HTTP status (401, 403, 400) and a reason a person can act on."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class Parsed:
    """What one delivery asks for: the changes to store (maybe none) and, when none, why."""

    changes: list[Change] = field(default_factory=list)
    ignored: str = ""


Headers = Mapping[str, str]  # lower-case header names


class Dialect:
    """One service's hook: checks the request is genuine, then turns its payload into changes.

    ``options`` is the dict of Buildbot's ``change_hook_dialects[name]``; ``errors`` lists what
    is wrong with it (shown by checkconfig), so constructing never raises."""

    name = ""
    known_options: frozenset[str] = frozenset({"secret", "codebase"})
    delivery_headers: tuple[str, ...] = ()

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self.options = dict(options or {})
        self.errors: list[str] = []
        unknown = sorted(set(self.options) - self.known_options)
        if unknown:
            self.errors.append(
                f"unknown option(s) {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(sorted(self.known_options))}"
            )
        self.secret = self._read_secret(self.options.get("secret"))
        codebase = self.options.get("codebase")
        if codebase is not None and not isinstance(codebase, str) and not callable(codebase):
            self.errors.append("codebase must be a string or a function of the payload")
        self.codebase: str | Callable[[Any], str] | None = codebase

    def _read_secret(self, secret: Any) -> str:
        """A string, or a Path to a file whose first line is the secret (read once, here)."""
        if isinstance(secret, PurePath):
            try:
                secret = Path(secret).read_text().splitlines()[0].strip()
            except (OSError, IndexError, UnicodeDecodeError) as exc:
                self.errors.append(f"cannot read the secret from {str(secret)!r}: {exc or 'empty file'}")
                return ""
        if secret is not None and (not isinstance(secret, str) or not secret):
            self.errors.append("secret must be a non-empty string or a Path to a file holding it")
            return ""
        return secret or ""

    # --- the three steps of a delivery ----------------------------------------------------

    def verify(self, headers: Headers, body: bytes) -> None:
        """Raise HookError(401/403) unless the request is genuine."""
        raise NotImplementedError

    def parse(self, headers: Headers, body: bytes) -> Parsed:
        raise NotImplementedError

    def delivery_id(self, headers: Headers) -> str:
        """The service's id of this delivery (the same on a redelivery), or ''."""
        for name in self.delivery_headers:
            if headers.get(name):
                return headers[name].strip()
        return ""

    # --- helpers for the dialects ----------------------------------------------------------

    def codebase_for(self, payload: Any) -> str:
        if callable(self.codebase):
            return str(self.codebase(payload))
        return self.codebase or ""

    def check_hmac_sha256(self, header: str, given: str | None, body: bytes, prefix: str = "") -> None:
        """Compare a hex HMAC-SHA256 of the body (after `prefix`, e.g. 'sha256=') in constant time."""
        if not self.secret:
            return
        if not given:
            raise HookError(401, f"missing {header} header: this hook is configured with a secret")
        if prefix:
            if not given.startswith(prefix):
                raise HookError(403, f"{header} must look like {prefix}<hex digest>")
            given = given[len(prefix):]
        expected = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, given.strip().lower()):
            raise HookError(403, f"{header} does not match the body: check the secret")


def load_json(body: bytes, content_type: str = "application/json") -> Any:
    """The JSON document of a delivery (also GitHub's form-encoded `payload=` variant)."""
    text = body
    if content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
        values = parse_qs(body.decode("utf-8", "replace")).get("payload")
        if not values:
            raise HookError(400, "form-encoded delivery without a 'payload' field")
        text = values[0].encode()
    try:
        payload = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HookError(400, f"the body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise HookError(400, "the body must be a JSON object")
    return payload


def get(payload: Any, path: str, kind: type | tuple[type, ...] = str, default: Any = ...) -> Any:
    """payload['a']['b'] for path 'a.b', checked to be of `kind`; a missing or mistyped field
    is a 400 naming it (or `default`, when given)."""
    value = payload
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value or value[part] is None:
            if default is not ...:
                return default
            raise HookError(400, f"the payload has no '{path}'")
        value = value[part]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        if default is not ...:
            return default
        want = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise HookError(400, f"the payload's '{path}' must be a {want}")
    return value


def timestamp(value: Any) -> float:
    """Seconds since the epoch of an ISO 8601 time as the services send it; 0 (meaning "now"
    to the service) when absent or unreadable — a time is no reason to refuse a change."""
    if not isinstance(value, str) or not value:
        return 0.0
    text = value.strip().replace(" UTC", "+00:00").replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return 0.0


def person(who: Any, name_key: str = "name") -> str:
    """'Name <email>' from a {name, email} object (either may be missing)."""
    if not isinstance(who, dict):
        return ""
    name = str(who.get(name_key) or who.get("name") or who.get("username") or "").strip()
    email = str(who.get("email") or "").strip()
    if name and email:
        return f"{name} <{email}>"
    return name or (f"<{email}>" if email else "")


def commit_files(commit: dict[str, Any]) -> list[str]:
    files: list[str] = []
    for kind in ("added", "modified", "removed"):
        files.extend(str(f) for f in commit.get(kind) or [])
    return files


def comments(text: Any) -> str:
    """A commit message, cut to what a change may hold (a long message is no reason to refuse)."""
    s = "" if text is None else str(text)
    return s if len(s) <= COMMENTS_LIMIT else s[: COMMENTS_LIMIT - 3] + "..."


def split_ref(ref: str) -> tuple[str, str] | None:
    """('heads'|'tags', name) for refs/heads/NAME and refs/tags/NAME; None for other refs."""
    m = REF.match(ref)
    return (m.group(1), m.group(2)) if m else None


def is_deletion(payload: dict[str, Any]) -> bool:
    after = payload.get("after")
    return bool(payload.get("deleted")) or (isinstance(after, str) and bool(ZERO_SHA.match(after)))


def push_changes(
    payload: dict[str, Any],
    *,
    repository: str,
    project: str,
    codebase: str,
    event: str,
    properties: dict[str, Any],
    created_head_only: bool = True,
) -> Parsed:
    """Buildbot's handling of a push, shared by the dialects (their push payloads agree):
    one change per commit on refs/heads/B (branch B, category 'push'); a tag push is one
    change at the tagged commit (branch = the tag, category 'tag'); a deletion or another ref
    is ignored. A newly created branch yields its head commit only, as Buildbot's GitHub hook
    does (not every commit that was already built elsewhere)."""
    ref = get(payload, "ref")
    split = split_ref(ref)
    if split is None:
        return Parsed(ignored=f"ref {ref} is neither a branch nor a tag")
    kind, branch = split
    if is_deletion(payload):
        return Parsed(ignored=f"{'tag' if kind == 'tags' else 'branch'} {branch} was deleted")
    commits = get(payload, "commits", list, [])
    head = payload.get("head_commit")
    if (kind == "tags" or (created_head_only and payload.get("created"))) and isinstance(head, dict):
        commits = [head]
    changes = []
    for i, commit in enumerate(commits):
        if not isinstance(commit, dict):
            raise HookError(400, f"the payload's 'commits.{i}' must be an object")
        changes.append(
            Change(
                author=person(get(commit, "author", dict)),
                committer=person(commit.get("committer")),
                comments=comments(commit.get("message")),
                files=commit_files(commit),
                revision=get(commit, "id"),
                branch=branch,
                repository=repository,
                project=project,
                codebase=codebase,
                category="tag" if kind == "tags" else "push",
                when=timestamp(commit.get("timestamp")),
                revlink=str(commit.get("url") or ""),
                properties={"event": event, **properties},
            )
        )
    if not changes:
        return Parsed(ignored=f"no commits pushed to {ref}")
    return Parsed(changes)
