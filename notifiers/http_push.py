"""HttpStatusPush: POST a JSON document about each build started/finished to a URL.

The HTTP client is a small HTTP/1.1 one on asyncio streams (stdlib only): one request per
connection (``Connection: close``), http or https, a 2xx answer is success, anything else
(or no answer within ``timeout``) is an error to retry.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import ssl
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from notifiers.base import DeliveryError, Notifier
from notifiers.render import MessageContext

SIGNATURE_HEADER = "X-Gantry-Signature"
Secret = str | Path | Callable[[], str] | None


class HttpStatusPush(Notifier):
    """``HttpStatusPush(url, builders=None, tags=None, mode="all", secret=None, timeout=10)``."""

    kind = "http"

    def __init__(
        self,
        url: str,
        builders: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        mode: str | Iterable[str] = "all",
        secret: Secret = None,
        timeout: float = 10.0,
        sendStarted: bool = True,  # noqa: N803 - Buildbot-style option name
        headers: dict[str, str] | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name or f"HttpStatusPush:{url}", mode, builders, tags)
        self.url = url
        self.secret = secret
        self.timeout = timeout
        self.headers = dict(headers or {})
        self.events = ("build.started", "build.finished") if sendStarted else ("build.finished",)
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            self.errors.append(f"url must be an http:// or https:// URL, not {url!r}")
        if not (isinstance(timeout, int | float) and timeout > 0):
            self.errors.append(f"timeout must be seconds > 0, not {timeout!r}")

    def render(self, event: str, builds: list[MessageContext]) -> dict[str, Any] | None:
        docs = [document(event, ctx) for ctx in builds]
        return {"body": json.dumps(docs[0] if len(docs) == 1 else docs, sort_keys=True)}

    def secret_value(self) -> str | None:
        s = self.secret
        if s is None:
            return None
        if isinstance(s, Path):
            return s.read_text().strip()
        return s() if callable(s) else s

    async def deliver(self, payload: dict[str, Any]) -> None:
        body = payload["body"].encode()
        headers = {"Content-Type": "application/json", **self.headers}
        secret = self.secret_value()
        if secret:
            headers[SIGNATURE_HEADER] = "sha256=" + sign(secret, body)
        try:
            status = await asyncio.wait_for(post(self.url, body, headers), self.timeout)
        except TimeoutError:
            raise DeliveryError(f"POST {self.url}: no answer within {self.timeout:g}s") from None
        except (OSError, ValueError) as exc:
            raise DeliveryError(f"POST {self.url}: {exc}") from exc
        if not 200 <= status < 300:
            raise DeliveryError(f"POST {self.url}: HTTP {status}")


def sign(secret: str, body: bytes) -> str:
    """HMAC-SHA256 of the body, hex (the receiver recomputes it with the shared secret)."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def document(event: str, ctx: MessageContext) -> dict[str, Any]:
    b = ctx.build
    return {
        "event": event,
        "builder": b.builder,
        "number": b.number,
        "buildset_id": b.buildset_id,
        "worker": b.worker,
        "state": b.state_string,
        "result": None if b.result is None else b.result.name,
        "result_code": None if b.result is None else int(b.result),
        "previous_result": None if ctx.previous is None else ctx.previous.name,
        "started_at": b.started_at,
        "finished_at": b.finished_at,
        "reason": b.reason,
        "url": ctx.link(),
        "failing_step": ctx.failing_step or None,
        "changes": [
            {"author": c.author, "revision": c.revision, "branch": c.branch,
             "repository": c.repository, "comments": c.comments, "revlink": c.revlink}
            for c in b.changes
        ],
        "properties": {p.name: p.value for p in b.properties},
    }


async def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST `body` to `url`; returns the HTTP status code."""
    parts = urlsplit(url)
    https = parts.scheme == "https"
    host = parts.hostname or ""
    port = parts.port or (443 if https else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    reader, writer = await asyncio.open_connection(
        host, port, ssl=ssl.create_default_context() if https else None
    )
    try:
        host_header = host if parts.port is None else f"{host}:{parts.port}"
        lines = [f"POST {path} HTTP/1.1", f"Host: {host_header}", "User-Agent: gantry",
                 f"Content-Length: {len(body)}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
        status_line = await reader.readline()
        fields = status_line.decode("latin-1").split()
        if len(fields) < 2 or not fields[0].startswith("HTTP/") or not fields[1].isdigit():
            raise ValueError(f"not an HTTP answer: {status_line[:80]!r}")
        return int(fields[1])
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (OSError, ssl.SSLError):
            pass
