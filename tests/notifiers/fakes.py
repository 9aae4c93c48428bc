"""Local stand-ins for the forges' and chat services' HTTP APIs (they cannot run here).

One aiohttp server answers as each service documents, after checking the method, the path, the
auth scheme and the body fields against the published API (the URL of each endpoint's
documentation is next to its check). A request the real service would refuse gets the refusal
the service gives (401, 404, 422, 400 ...) and is also listed in ``violations`` so a test sees
it; an accepted one is listed in ``calls``. ``script[service]`` makes the next requests to a
service answer the given statuses first (503: the service is having a bad day; 0: answer
normally).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

TOKEN = "t0ken"
USER, PASSWORD = "ci-bot", "app-pa55"
OAUTH_KEY, OAUTH_SECRET, ACCESS_TOKEN = "bb-key", "bb-s3cret", "bb-access"
SHA = re.compile(r"^[0-9a-f]{7,40}$")


@dataclass
class Call:
    service: str
    method: str
    path: str  # raw (still percent-encoded)
    headers: dict[str, str]
    body: dict[str, Any]


class Refused(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status)
        self.status, self.body = status, body


Route = tuple[str, str, re.Pattern[str], Callable[["FakeServices", re.Match[str], dict[str, str], Any], Any]]


@dataclass
class FakeServices:
    port: int = 0
    calls: list[Call] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    script: dict[str, list[int]] = field(default_factory=dict)
    gitlab_states: dict[tuple[str, str, str], str] = field(default_factory=dict)
    check_runs: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def of(self, service: str) -> list[Call]:
        return [c for c in self.calls if c.service == service]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = request.raw_path.split("?")[0]
        for service, method, pattern, check in ROUTES:
            m = pattern.match(raw)
            if m is None:
                continue
            if request.method != method:
                self.violations.append(f"{service}: {request.method} {raw}")
                return web.json_response({"message": "Method Not Allowed"}, status=405)
            scripted = self.script.get(service)
            status = scripted.pop(0) if scripted else 0
            if status:  # 0 in a script: answer that request normally
                return web.Response(status=status, text="Service Unavailable")
            headers = {k.lower(): v for k, v in request.headers.items()}
            try:
                if service == "bitbucket-oauth":
                    answer = check(self, m, headers, dict(await request.post()))
                    self.calls.append(Call(service, request.method, raw, headers, {}))
                    return web.json_response(answer[1], status=answer[0])
                if not headers.get("content-type", "").startswith("application/json"):
                    raise Refused(415, {"message": "Content-Type must be application/json"})
                try:
                    body = json.loads(await request.read())
                except ValueError:
                    raise Refused(400, {"message": "Problems parsing JSON"}) from None
                answer = check(self, m, headers, body)
            except Refused as exc:
                self.violations.append(f"{service}: {exc.status} {exc.body}")
                if isinstance(exc.body, str):
                    return web.Response(status=exc.status, text=exc.body)
                return web.json_response(exc.body, status=exc.status)
            self.calls.append(Call(service, request.method, raw, headers, body))
            status, doc = answer
            if doc is None:
                return web.Response(status=status)
            if isinstance(doc, str):
                return web.Response(status=status, text=doc)
            return web.json_response(doc, status=status)
        self.violations.append(f"no such endpoint: {request.method} {raw}")
        return web.json_response({"message": "Not Found"}, status=404)


def need(cond: bool, status: int, body: Any) -> None:
    if not cond:
        raise Refused(status, body)


def fields(
    body: Any, required: dict[str, Any], optional: dict[str, Any], status: int, err: Callable[[str], Any]
) -> None:
    """Required/optional fields with their allowed values (a type, or a tuple of values)."""
    need(isinstance(body, dict), status, err("body must be an object"))
    for name, allowed in {**required, **optional}.items():
        if name not in body:
            need(name not in required, status, err(f"{name} is missing"))
            continue
        value = body[name]
        ok = value in allowed if isinstance(allowed, tuple) else isinstance(value, allowed)
        need(ok, status, err(f"{name} is invalid: {value!r}"))
    unknown = set(body) - set(required) - set(optional)
    need(not unknown, status, err(f"unknown fields {sorted(unknown)}"))


# --- GitHub ------------------------------------------------------------------------------


def github_auth(headers: dict[str, str]) -> None:
    # https://docs.github.com/en/rest/authentication/authenticating-to-the-rest-api
    # ("Authorization: Bearer" or the older "Authorization: token"; a wrong one is 401)
    need(headers.get("authorization") in (f"token {TOKEN}", f"Bearer {TOKEN}"), 401,
         {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
    need(headers.get("accept", "application/vnd.github+json") in ("application/vnd.github+json", "*/*"),
         415, {"message": "Unsupported Accept"})


def gh_error(msg: str) -> dict[str, Any]:
    return {"message": "Validation Failed", "errors": [{"message": msg}]}


def github_status(fake: FakeServices, m: re.Match[str], headers: dict[str, str], body: Any) -> Any:
    # POST /repos/{owner}/{repo}/statuses/{sha}
    # https://docs.github.com/en/rest/commits/statuses#create-a-commit-status
    github_auth(headers)
    need(m["owner"] == "octo" and m["repo"] == "hello", 404, {"message": "Not Found"})
    need(bool(SHA.match(m["sha"])), 422, {"message": f"No commit found for SHA: {m['sha']}"})
    fields(body, {"state": ("error", "failure", "pending", "success")},
           {"target_url": str, "description": str, "context": str}, 422, gh_error)
    need(len(body.get("description", "")) <= 140, 422, gh_error("description is too long (maximum is 140 characters)"))
    return 201, {"id": len(fake.calls) + 1, "state": body["state"], "context": body.get("context", "default")}


def github_check_run(fake: FakeServices, m: re.Match[str], headers: dict[str, str], body: Any) -> Any:
    # POST /repos/{owner}/{repo}/check-runs
    # https://docs.github.com/en/rest/checks/runs#create-a-check-run
    github_auth(headers)
    need(m["owner"] == "octo" and m["repo"] == "hello", 404, {"message": "Not Found"})
    fields(body, {"name": str, "head_sha": str},
           {"details_url": str, "external_id": str, "started_at": str, "completed_at": str,
            "status": ("queued", "in_progress", "completed", "waiting", "requested", "pending"),
            "conclusion": ("action_required", "cancelled", "failure", "neutral", "success", "skipped",
                           "stale", "timed_out"),
            "output": dict, "actions": list}, 422, gh_error)
    need((body.get("status") == "completed") == ("conclusion" in body), 422,
         gh_error("conclusion is required when status is completed (and only then)"))
    out = body.get("output")
    if out is not None:
        fields(out, {"title": str, "summary": str}, {"text": str, "annotations": list, "images": list},
               422, gh_error)
        need(len(out["summary"]) <= 65535, 422, gh_error("summary is too long"))
    fake.check_runs += 1
    return 201, {"id": fake.check_runs, "head_sha": body["head_sha"], "status": body.get("status", "queued")}


# --- GitLab ------------------------------------------------------------------------------


def gitlab_status(fake: FakeServices, m: re.Match[str], headers: dict[str, str], body: Any) -> Any:
    # POST /api/v4/projects/:id/statuses/:sha  (:id = the numeric id or the URL-encoded path)
    # https://docs.gitlab.com/ee/api/commits.html#set-the-pipeline-status-of-a-commit
    need(headers.get("private-token") == TOKEN or headers.get("authorization") == f"Bearer {TOKEN}",
         401, {"message": "401 Unauthorized"})
    need(m["id"] in ("group%2Fhello", "octo%2Fhello", "42"), 404, {"message": "404 Project Not Found"})
    fields(body, {"state": ("pending", "running", "success", "failed", "canceled", "skipped")},
           {"ref": str, "name": str, "context": str, "target_url": str, "description": str,
            "coverage": float, "pipeline_id": int}, 400, lambda msg: {"message": msg})
    key = (m["id"], m["sha"], body.get("name", "default"))
    # GitLab refuses to "transition" a status to the state it is in.
    need(fake.gitlab_states.get(key) != body["state"], 400,
         {"message": f"Cannot transition status via :{body['state']} from :{body['state']}"})
    fake.gitlab_states[key] = body["state"]
    return 201, {"id": len(fake.calls) + 1, "sha": m["sha"], "status": body["state"], "name": key[2]}


# --- Gitea / Forgejo ---------------------------------------------------------------------


def gitea_status(fake: FakeServices, m: re.Match[str], headers: dict[str, str], body: Any) -> Any:
    # POST /api/v1/repos/{owner}/{repo}/statuses/{sha}
    # https://gitea.com/api/swagger#/repository/repoCreateStatus (CreateStatusOption)
    need(headers.get("authorization") in (f"token {TOKEN}", f"Bearer {TOKEN}"), 401,
         {"message": "token is required"})
    need(m["owner"] == "octo" and m["repo"] == "hello", 404, {"message": "The target couldn't be found."})
    fields(body, {"state": ("pending", "success", "error", "failure", "warning")},
           {"target_url": str, "description": str, "context": str}, 422, lambda msg: {"message": msg})
    return 201, {"id": len(fake.calls) + 1, "status": body["state"], "context": body.get("context", "")}


# --- Bitbucket ---------------------------------------------------------------------------


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def bitbucket_oauth(fake: FakeServices, m: re.Match[str], headers: dict[str, str], form: Any) -> Any:
    # POST https://bitbucket.org/site/oauth2/access_token, grant_type=client_credentials with the
    # consumer's key and secret as basic auth
    # https://developer.atlassian.com/cloud/bitbucket/oauth-2/#client-credentials-grant--4-4-
    need(headers.get("content-type", "").startswith("application/x-www-form-urlencoded"), 400,
         {"error": "invalid_request", "error_description": "form-encoded body expected"})
    need(headers.get("authorization") == basic(OAUTH_KEY, OAUTH_SECRET), 400,
         {"error": "invalid_client", "error_description": "Invalid client_id or client_secret"})
    need(form.get("grant_type") == "client_credentials", 400,
         {"error": "unsupported_grant_type", "error_description": "Unsupported grant type"})
    return 200, {"access_token": ACCESS_TOKEN, "scopes": "repository", "expires_in": 7200,
                 "refresh_token": "r", "token_type": "bearer"}


def bitbucket_auth(headers: dict[str, str]) -> None:
    accepted = (basic(USER, PASSWORD), f"Bearer {TOKEN}", f"Bearer {ACCESS_TOKEN}")
    need(headers.get("authorization") in accepted, 401,
         {"type": "error", "error": {"message": "Access token expired or invalid credentials."}})


def bitbucket_body(body: Any, states: tuple[str, ...], status: int, err: Callable[[str], Any],
                   extra: dict[str, Any]) -> None:
    fields(body, {"state": states, "key": str, "url": str},
           {"name": str, "description": str, **extra}, status, err)
    need(0 < len(body["key"]) <= 40, status, err("key must be 1 to 40 characters"))


def bitbucket_cloud(fake: FakeServices, m: re.Match[str], headers: dict[str, str], body: Any) -> Any:
    # POST /2.0/repositories/{workspace}/{repo_slug}/commit/{commit}/statuses/build
    # https://developer.atlassian.com/cloud/bitbucket/rest/api-group-commit-statuses/#api-repositories-workspace-repo-slug-commit-commit-statuses-build-post
    bitbucket_auth(headers)
    need(m["ws"] == "octo" and m["slug"] == "hello", 404,
         {"type": "error", "error": {"message": "Repository octo/hello not found"}})
    bitbucket_body(body, ("INPROGRESS", "SUCCESSFUL", "FAILED", "STOPPED"), 400,
                   lambda msg: {"type": "error", "error": {"message": msg}}, {"refname": str})
    return 201, {"type": "commitstatus", **body}


def bitbucket_server(fake: FakeServices, m: re.Match[str], headers: dict[str, str], body: Any) -> Any:
    # POST /rest/build-status/1.0/commits/{commitId}
    # https://developer.atlassian.com/server/bitbucket/rest/v811/api-group-build-status/
    bitbucket_auth(headers)
    bitbucket_body(body, ("INPROGRESS", "SUCCESSFUL", "FAILED"), 400,
                   lambda msg: {"errors": [{"context": None, "message": msg}]}, {})
    return 204, None


# --- chat --------------------------------------------------------------------------------


def slack(fake: FakeServices, m: re.Match[str], headers: dict[str, str], body: Any) -> Any:
    # https://api.slack.com/messaging/webhooks (and the errors table there)
    need(m["hook"] == "T000/B000/XXXX", 404, "no_service")
    fields(body, {"text": str}, {"blocks": list, "attachments": list, "username": str, "channel": str,
                                 "icon_emoji": str, "icon_url": str, "mrkdwn": bool}, 400,
           lambda _msg: "invalid_payload")
    for a in body.get("attachments", []):
        fields(a, {}, {"color": str, "text": str, "mrkdwn_in": list, "fallback": str, "title": str}, 400,
               lambda _msg: "invalid_attachments")
    return 200, "ok"


def mattermost(fake: FakeServices, m: re.Match[str], headers: dict[str, str], body: Any) -> Any:
    # https://developers.mattermost.com/integrate/webhooks/incoming/ (parameters table)
    need(m["key"] == "mm0key", 400, {"id": "web.incoming_webhook.invalid.app_error",
                                     "message": "Invalid webhook.", "status_code": 400})
    fields(body, {}, {"text": str, "channel": str, "username": str, "icon_url": str, "icon_emoji": str,
                      "attachments": list, "type": str, "props": dict, "priority": dict}, 400,
           lambda msg: {"message": msg, "status_code": 400})
    need(bool(body.get("text") or body.get("attachments")), 400,
         {"message": "Unable to create post: text or attachments is required.", "status_code": 400})
    return 200, "ok"


def discord(fake: FakeServices, m: re.Match[str], headers: dict[str, str], body: Any) -> Any:
    # POST /webhooks/{webhook.id}/{webhook.token}
    # https://discord.com/developers/docs/resources/webhook#execute-webhook
    need(m["id"] == "1234" and m["token"] == "d1sc0rd", 401, {"message": "Invalid Webhook Token", "code": 50027})
    fields(body, {}, {"content": str, "username": str, "avatar_url": str, "tts": bool, "embeds": list,
                      "allowed_mentions": dict, "flags": int}, 400, lambda msg: {"message": msg, "code": 50035})
    need(bool(body.get("content") or body.get("embeds")), 400,
         {"message": "Cannot send an empty message", "code": 50006})
    need(len(body.get("content", "")) <= 2000, 400,
         {"message": "Invalid Form Body", "code": 50035})
    for e in body.get("embeds", []):
        fields(e, {}, {"title": str, "description": str, "url": str, "color": int, "fields": list}, 400,
               lambda msg: {"message": msg, "code": 50035})
        need(len(e.get("description", "")) <= 4096, 400, {"message": "Invalid Form Body", "code": 50035})
    return 204, None


def teams(fake: FakeServices, m: re.Match[str], headers: dict[str, str], body: Any) -> Any:
    # Power Automate "When a Teams webhook request is received" / Incoming Webhook with an
    # Adaptive Card: https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using#send-adaptive-cards-using-an-incoming-webhook
    need(body.get("type") == "message" and isinstance(body.get("attachments"), list)
         and len(body["attachments"]) >= 1, 400, {"error": {"message": "Bad request: not a message"}})
    card = body["attachments"][0]
    need(card.get("contentType") == "application/vnd.microsoft.card.adaptive", 400,
         {"error": {"message": "attachment must be an Adaptive Card"}})
    content = card.get("content")
    need(isinstance(content, dict) and content.get("type") == "AdaptiveCard"
         and isinstance(content.get("body"), list) and isinstance(content.get("version"), str), 400,
         {"error": {"message": "invalid Adaptive Card"}})
    return 202, None


REPO = r"(?P<owner>[^/]+)/(?P<repo>[^/]+)"
ROUTES: list[Route] = [
    ("github", "POST", re.compile(rf"^/gh/repos/{REPO}/statuses/(?P<sha>[^/]+)$"), github_status),
    ("github-checks", "POST", re.compile(rf"^/gh/repos/{REPO}/check-runs$"), github_check_run),
    ("gitlab", "POST", re.compile(r"^/api/v4/projects/(?P<id>[^/]+)/statuses/(?P<sha>[^/]+)$"), gitlab_status),
    ("gitea", "POST", re.compile(rf"^/api/v1/repos/{REPO}/statuses/(?P<sha>[^/]+)$"), gitea_status),
    ("bitbucket", "POST", re.compile(
        r"^/2\.0/repositories/(?P<ws>[^/]+)/(?P<slug>[^/]+)/commit/(?P<sha>[^/]+)/statuses/build$"), bitbucket_cloud),
    ("bitbucket-oauth", "POST", re.compile(r"^/site/oauth2/access_token$"), bitbucket_oauth),
    ("bitbucket-server", "POST", re.compile(r"^/rest/build-status/1\.0/commits/(?P<sha>[^/]+)$"), bitbucket_server),
    ("slack", "POST", re.compile(r"^/services/(?P<hook>.+)$"), slack),
    ("mattermost", "POST", re.compile(r"^/hooks/(?P<key>[^/]+)$"), mattermost),
    ("discord", "POST", re.compile(r"^/api/webhooks/(?P<id>[^/]+)/(?P<token>[^/]+)$"), discord),
    ("teams", "POST", re.compile(r"^/workflows/(?P<id>[^/]+)/triggers/manual/paths/invoke$"), teams),
]


async def start_fake_services() -> tuple[FakeServices, web.AppRunner]:
    fake = FakeServices()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake.port = runner.addresses[0][1]
    return fake, runner


@pytest.fixture
async def services_fake() -> AsyncIterator[FakeServices]:
    fake, runner = await start_fake_services()
    try:
        yield fake
    finally:
        await runner.cleanup()
