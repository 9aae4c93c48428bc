"""GitLab: Buildbot's ``GitLabStatusPush`` - the commit status API,
``POST {baseURL}/api/v4/projects/{url-encoded path}/statuses/{sha}``
(https://docs.gitlab.com/ee/api/commits.html#set-the-pipeline-status-of-a-commit), with the
``PRIVATE-TOKEN`` header. States: pending, running, success, failed, canceled; the status
``name`` (the pipeline job name GitLab shows) is the builder's by default.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from coordinator.domain.model import SourceStamp
from coordinator.domain.properties.renderables import Interpolate, Renderable
from coordinator.domain.results import Result
from notifiers.render import MessageContext
from notifiers.reporters.base import StatusReporter, Token
from notifiers.reporters.repository import repository_path

STATES = {Result.SUCCESS: "success", Result.WARNINGS: "success", Result.SKIPPED: "success",
          Result.FAILURE: "failed", Result.EXCEPTION: "failed", Result.CANCELLED: "canceled",
          Result.RETRY: "pending"}


class GitLabStatusPush(StatusReporter):
    """``GitLabStatusPush(token, context=Interpolate("%(prop:buildername)s"),
    baseURL="https://gitlab.com", builders=None, tags=None, ...)``."""

    service = "GitLab"
    default_base_url = "https://gitlab.com"

    def __init__(
        self,
        token: Token,
        context: str | Renderable | None = None,
        baseURL: str | None = None,  # noqa: N803 - Buildbot's option name
        builders: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        verbose: bool = False,
        timeout: float = 10.0,
        name: str = "GitLabStatusPush",
        **options: Any,
    ) -> None:
        context = Interpolate("%(prop:buildername)s") if context is None else context
        super().__init__(name, token, context, baseURL, builders, tags, verbose, timeout, options)
        if not token:
            self.errors.append("GitLabStatusPush needs a token (Secret('...') or a string)")

    async def auth_headers(self) -> dict[str, str]:
        return {"PRIVATE-TOKEN": self.token_value()}

    def request(
        self, phase: str, result: Result, ss: SourceStamp, context: str, description: str,
        ctx: MessageContext,
    ) -> dict[str, Any] | None:
        found = repository_path(ss.repository)
        if found is None:
            return None
        state = {"pending": "pending", "start": "running"}.get(phase) or STATES.get(result, "failed")
        body: dict[str, Any] = {"state": state, "name": context, "description": description}
        if ss.branch:
            body["ref"] = ss.branch
        if ctx.url:
            body["target_url"] = ctx.url
        url = f"{self.base_url}/api/v4/projects/{quote(found[1], safe='')}/statuses/{ss.revision}"
        return {"method": "POST", "url": url, "body": body, "state": state, "sha": ss.revision,
                "target": f"{url}#{context}"}
