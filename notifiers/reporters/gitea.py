"""Gitea and Forgejo: Buildbot's ``GiteaStatusPush`` -
``POST {baseURL}/api/v1/repos/{owner}/{repo}/statuses/{sha}``
(https://gitea.com/api/swagger#/repository/repoCreateStatus, the same in Forgejo), with
``Authorization: token ...``. States: pending, success, warning, failure, error (no running: a
started build is pending, as in Buildbot's table).
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

STATES = {Result.SUCCESS: "success", Result.WARNINGS: "warning", Result.SKIPPED: "success",
          Result.FAILURE: "failure", Result.EXCEPTION: "error", Result.CANCELLED: "error",
          Result.RETRY: "pending"}


class GiteaStatusPush(StatusReporter):
    """``GiteaStatusPush(baseURL, token, context=Interpolate("buildbot/%(prop:buildername)s"),
    builders=None, tags=None, ...)`` - baseURL is the server, e.g. https://gitea.example.org."""

    service = "Gitea"

    def __init__(
        self,
        baseURL: str,  # noqa: N803 - Buildbot's option name
        token: Token,
        context: str | Renderable | None = None,
        builders: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        verbose: bool = False,
        timeout: float = 10.0,
        name: str = "GiteaStatusPush",
        **options: Any,
    ) -> None:
        super().__init__(name, token, context, baseURL, builders, tags, verbose, timeout, options)
        if not token:
            self.errors.append("GiteaStatusPush needs a token (Secret('...') or a string)")

    async def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token_value()}"}

    def request(
        self, phase: str, result: Result, ss: SourceStamp, context: str, description: str,
        ctx: MessageContext,
    ) -> dict[str, Any] | None:
        found = owner_and_name(ss.repository)
        if found is None:
            return None
        state = "pending" if phase != "end" else STATES.get(result, "error")
        body = {"state": state, "context": context, "description": description,
                "target_url": ctx.url}
        url = f"{self.base_url}/api/v1/repos/{found[0]}/{found[1]}/statuses/{ss.revision}"
        return {"method": "POST", "url": url, "body": body, "state": state, "sha": ss.revision,
                "target": f"{url}#{context}"}
