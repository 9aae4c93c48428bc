"""GitHub: commit statuses (Buildbot's ``GitHubStatusPush``) and check runs.

* Statuses - ``POST {baseURL}/repos/{owner}/{repo}/statuses/{sha}``
  (https://docs.github.com/en/rest/commits/statuses#create-a-commit-status): ``state`` is one of
  pending/success/failure/error; GitHub has no "running", so a started build is pending with
  "Build #N started." as its description - as in Buildbot.
* Check runs - ``POST {baseURL}/repos/{owner}/{repo}/check-runs``
  (https://docs.github.com/en/rest/checks/runs#create-a-check-run): queued on request,
  in_progress on start, completed with a conclusion on finish; the output summary of a failed
  build is its failing step and the last lines of that step's log. Each state creates a check
  run (no id to remember between notifications); GitHub shows the newest of a name per commit.
  The check runs API takes only a GitHub App's installation token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from coordinator.domain.model import SourceStamp
from coordinator.domain.properties.renderables import Renderable
from coordinator.domain.results import Result
from notifiers.render import MessageContext
from notifiers.reporters.base import StatusReporter, Token
from notifiers.reporters.repository import owner_and_name

API = "https://api.github.com"
API_VERSION = "2022-11-28"
DESCRIPTION_LIMIT = 140  # GitHub refuses a longer status description
SUMMARY_LIMIT = 65535  # characters of a check run's output summary

# Buildbot's GitHubStatusPush table (CANCELLED is "error": GitHub statuses have no cancelled).
STATES = {Result.SUCCESS: "success", Result.WARNINGS: "success", Result.SKIPPED: "success",
          Result.FAILURE: "failure", Result.EXCEPTION: "error", Result.CANCELLED: "error",
          Result.RETRY: "pending"}
CONCLUSIONS = {Result.SUCCESS: "success", Result.WARNINGS: "neutral", Result.SKIPPED: "skipped",
               Result.FAILURE: "failure", Result.EXCEPTION: "failure",
               Result.CANCELLED: "cancelled", Result.RETRY: "neutral"}


class _GitHub(StatusReporter):
    service = "GitHub"
    default_base_url = API
    missing_token = ""  # the checkconfig problem when no token is given

    def __init__(
        self,
        token: Token,
        context: str | Renderable | None = None,
        baseURL: str | None = None,  # noqa: N803 - Buildbot's option name
        builders: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        verbose: bool = False,
        timeout: float = 10.0,
        name: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(name or type(self).__name__, token, context, baseURL, builders, tags, verbose, timeout,
                         options)
        if not token:
            self.errors.append(self.missing_token)

    async def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token_value()}", "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION}

    def repo_url(self, ss: SourceStamp) -> str | None:
        found = owner_and_name(ss.repository)
        return None if found is None else f"{self.base_url}/repos/{found[0]}/{found[1]}"


class GitHubStatusPush(_GitHub):
    """``GitHubStatusPush(token, context=Interpolate("buildbot/%(prop:buildername)s"),
    baseURL="https://api.github.com", builders=None, tags=None, ...)``."""

    missing_token = "GitHubStatusPush needs a token (Secret('...') or a string)"

    def request(
        self, phase: str, result: Result, ss: SourceStamp, context: str, description: str,
        ctx: MessageContext,
    ) -> dict[str, Any] | None:
        repo = self.repo_url(ss)
        if repo is None:
            return None
        state = "pending" if phase != "end" else STATES.get(result, "error")
        body = {"state": state, "context": context, "description": description[:DESCRIPTION_LIMIT]}
        if ctx.url:
            body["target_url"] = ctx.url
        url = f"{repo}/statuses/{ss.revision}"
        return {"method": "POST", "url": url, "body": body, "state": state, "sha": ss.revision,
                "target": f"{url}#{context}"}


class GitHubChecksPush(_GitHub):
    """``GitHubChecksPush(token, context=..., baseURL=..., builders=None, tags=None, ...)``:
    a check run per state, named by `context`."""

    missing_token = "GitHubChecksPush needs a GitHub App installation token"

    def request(
        self, phase: str, result: Result, ss: SourceStamp, context: str, description: str,
        ctx: MessageContext,
    ) -> dict[str, Any] | None:
        repo = self.repo_url(ss)
        if repo is None:
            return None
        build = ctx.build
        body: dict[str, Any] = {"name": context, "head_sha": ss.revision,
                                "external_id": f"{build.builder}/{build.number or 'request'}"}
        if ctx.url:
            body["details_url"] = ctx.url
        if phase == "pending":
            state = body["status"] = "queued"
        elif phase == "start":
            state = body["status"] = "in_progress"
        else:
            body["status"] = "completed"
            state = body["conclusion"] = CONCLUSIONS.get(result, "failure")
        body["output"] = {"title": description, "summary": summary(ctx, description)}
        url = f"{repo}/check-runs"
        return {"method": "POST", "url": url, "body": body, "state": state, "sha": ss.revision,
                "target": f"{repo}@{ss.revision}#{context}"}


def summary(ctx: MessageContext, description: str) -> str:
    """Markdown: the description, and for a failed build its failing step, its failing tests
    with their messages, and its last log lines."""
    text = description
    if ctx.failing_step:
        text += f"\n\nFailing step: **{ctx.failing_step}**"
        if ctx.failing_tests:
            text += "\n\nFailing tests:\n" + "\n".join(
                f"- `{c.full_name}`" + (f": {c.message}" if c.message else "") for c in ctx.failing_tests
            )
        if ctx.log_tail:
            tail = "\n".join(ctx.log_tail).replace("```", "'''")
            text += f"\n\n```\n{tail}\n```"
    if ctx.url:
        text += f"\n\n[Build page]({ctx.url})"
    return text[:SUMMARY_LIMIT]
