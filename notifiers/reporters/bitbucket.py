"""Bitbucket Cloud and Bitbucket Server (Data Center) build statuses.

* Cloud, Buildbot's ``BitbucketStatusPush`` -
  ``POST {base_url}/{workspace}/{repo_slug}/commit/{sha}/statuses/build``
  (https://developer.atlassian.com/cloud/bitbucket/rest/api-group-commit-statuses/#api-repositories-workspace-repo-slug-commit-commit-statuses-build-post)
  with an OAuth consumer (``oauth_key``/``oauth_secret``: the client-credentials grant at
  ``oauth_url``, https://developer.atlassian.com/cloud/bitbucket/oauth-2/), HTTP basic auth
  (``auth=(user, app_password)``) or a repository/workspace access token (``token=``, sent as
  a Bearer token). States: INPROGRESS, SUCCESSFUL, FAILED, STOPPED.
* Server, Buildbot's ``BitbucketServerStatusPush`` -
  ``POST {base_url}/rest/build-status/1.0/commits/{sha}``
  (https://developer.atlassian.com/server/bitbucket/rest/v811/api-group-build-status/) with
  basic auth (``user``, ``password``) or a personal access token (``token=``, Bearer). States:
  INPROGRESS, SUCCESSFUL, FAILED (that API has no cancelled state: CANCELLED is FAILED).

Bitbucket has no pending state: a submitted request is INPROGRESS, like a running build. Its
``key`` identifies the status (at most 40 characters: a longer one is replaced by its SHA-1).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from collections.abc import Sequence
from typing import Any

from coordinator.domain.model import SourceStamp
from coordinator.domain.properties.renderables import Interpolate, Renderable, render
from coordinator.domain.results import Result
from notifiers.base import DeliveryError
from notifiers.render import MessageContext
from notifiers.reporters.base import BuildProps, StatusReporter, Token
from notifiers.reporters.repository import owner_and_name

KEY_LIMIT = 40
OAUTH_URL = "https://bitbucket.org/site/oauth2/access_token"
BUILDER = Interpolate("%(prop:buildername)s")  # Buildbot's default key and name
PASSED = (Result.SUCCESS, Result.WARNINGS, Result.SKIPPED)
Secretish = str | Renderable | None


class _Bitbucket(StatusReporter):
    cancelled_state = "FAILED"

    def __init__(
        self, name: str, token: Token, key: str | Renderable | None, status_name: str | Renderable | None,
        base_url: str | None, user: Secretish, password: Secretish, builders: Sequence[str] | None,
        tags: Sequence[str] | None, verbose: bool, timeout: float, options: dict[str, Any],
    ) -> None:
        super().__init__(name, token, BUILDER if key is None else key, base_url, builders, tags, verbose,
                         timeout, options)
        self.status_name = BUILDER if status_name is None else status_name
        self.user, self.password = user, password

    def check_credentials(self, choices: str, *given: bool) -> None:
        if sum(given) != 1:
            self.errors.append(f"{type(self).__name__} needs {choices}")

    async def auth_headers(self) -> dict[str, str]:
        if self.token:
            return {"Authorization": f"Bearer {self.token_value()}"}
        return {"Authorization": basic(self.resolve(self.user), self.resolve(self.password))}

    def state(self, phase: str, result: Result) -> str:
        if phase != "end" or result == Result.RETRY:
            return "INPROGRESS"
        if result in PASSED:
            return "SUCCESSFUL"
        return self.cancelled_state if result == Result.CANCELLED else "FAILED"

    def body(self, phase: str, result: Result, key: str, description: str, ctx: MessageContext) -> dict[str, Any]:
        key = key if len(key) <= KEY_LIMIT else hashlib.sha1(key.encode()).hexdigest()
        name = str(render(self.status_name, BuildProps(ctx.build, self.secret_lookup)))
        return {"state": self.state(phase, result), "key": key, "name": name,
                "url": ctx.url or self.base_url, "description": description}


class BitbucketStatusPush(_Bitbucket):
    """``BitbucketStatusPush(oauth_key, oauth_secret | auth=(user, app_password) | token=...,
    base_url="https://api.bitbucket.org/2.0/repositories", oauth_url=..., status_key=...,
    status_name=..., ...)``."""

    service = "Bitbucket"
    default_base_url = "https://api.bitbucket.org/2.0/repositories"
    cancelled_state = "STOPPED"

    def __init__(
        self,
        oauth_key: Secretish = None,
        oauth_secret: Secretish = None,
        auth: tuple[Secretish, Secretish] | None = None,
        base_url: str | None = None,
        oauth_url: str = OAUTH_URL,
        token: Token = None,
        status_key: str | Renderable | None = None,
        status_name: str | Renderable | None = None,
        builders: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        verbose: bool = False,
        timeout: float = 10.0,
        name: str = "BitbucketStatusPush",
        **options: Any,
    ) -> None:
        user, password = auth if isinstance(auth, tuple) and len(auth) == 2 else (None, None)
        super().__init__(name, token, status_key, status_name, base_url, user, password, builders, tags,
                         verbose, timeout, options)
        self.oauth_key, self.oauth_secret, self.oauth_url = oauth_key, oauth_secret, oauth_url
        self._access: tuple[str, float] | None = None  # (OAuth access token, valid until)
        self._access_lock = asyncio.Lock()
        if auth is not None and user is None:
            self.errors.append(f"auth must be a (user, password) pair, not {auth!r}")
        if (oauth_key is None) != (oauth_secret is None):
            self.errors.append("oauth_key and oauth_secret go together")
        self.check_credentials("one of oauth_key/oauth_secret, auth=(user, password) or token=",
                               oauth_key is not None, auth is not None, bool(token))

    async def auth_headers(self) -> dict[str, str]:
        if self.oauth_key is None:
            return await super().auth_headers()
        async with self._access_lock:  # one token request at a time, however many deliveries
            return {"Authorization": f"Bearer {await self._access_token()}"}

    async def _access_token(self) -> str:
        now = time.monotonic()
        if self._access is None or self._access[1] <= now:
            # The OAuth consumer's client-credentials grant (Buildbot's way): an access token
            # valid for `expires_in` seconds, kept until shortly before it ends.
            answer = await self.client.send("POST", self.oauth_url, form={"grant_type": "client_credentials"},
                                headers={"Authorization": basic(self.resolve(self.oauth_key),
                                                                self.resolve(self.oauth_secret))},
                                timeout=self.timeout)
            try:
                doc = json.loads(answer)
                access, expires = str(doc["access_token"]), float(doc.get("expires_in", 3600))
            except (ValueError, KeyError, TypeError):
                raise DeliveryError(f"{self.oauth_url}: no access_token in the answer") from None
            self._access = (access, now + max(0.0, expires - 60))
        return self._access[0]

    def request(
        self, phase: str, result: Result, ss: SourceStamp, context: str, description: str,
        ctx: MessageContext,
    ) -> dict[str, Any] | None:
        found = owner_and_name(ss.repository)
        if found is None:
            return None
        body = self.body(phase, result, context, description, ctx)
        if ss.branch:
            body["refname"] = ss.branch
        url = f"{self.base_url}/{found[0]}/{found[1]}/commit/{ss.revision}/statuses/build"
        return {"method": "POST", "url": url, "body": body, "state": body["state"], "sha": ss.revision,
                "target": f"{url}#{body['key']}"}


class BitbucketServerStatusPush(_Bitbucket):
    """``BitbucketServerStatusPush(base_url, user, password | token=..., key=..., statusName=...,
    ...)`` - base_url is the server, e.g. https://bitbucket.example.org."""

    service = "Bitbucket Server"

    def __init__(
        self,
        base_url: str,
        user: Secretish = None,
        password: Secretish = None,
        token: Token = None,
        key: str | Renderable | None = None,
        statusName: str | Renderable | None = None,  # noqa: N803 - Buildbot's option name
        builders: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        verbose: bool = False,
        timeout: float = 10.0,
        name: str = "BitbucketServerStatusPush",
        **options: Any,
    ) -> None:
        super().__init__(name, token, key, statusName, base_url, user, password, builders, tags,
                         verbose, timeout, options)
        self.check_credentials("either token= or a user and a password", bool(user and password), bool(token))

    def request(
        self, phase: str, result: Result, ss: SourceStamp, context: str, description: str,
        ctx: MessageContext,
    ) -> dict[str, Any] | None:
        body = self.body(phase, result, context, description, ctx)
        url = f"{self.base_url}/rest/build-status/1.0/commits/{ss.revision}"
        return {"method": "POST", "url": url, "body": body, "state": body["state"], "sha": ss.revision,
                "target": f"{url}#{body['key']}"}


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
