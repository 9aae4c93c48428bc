"""The one HTTP request a reporter or chat notifier makes per delivery, and what its answer means.

A 2xx is delivered. A 4xx (but 408 Request Timeout and 429 Too Many Requests) means the service
refused the message itself - a bad token, an unknown repository or commit, a malformed
payload: sending it again cannot help, so it is :class:`DeliveryRejected` (recorded failed at
once, with the service's own message). Anything else - 5xx, 408, 429, a refused connection, no
answer within the timeout - is a :class:`DeliveryError`, retried with backoff.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from notifiers.base import DeliveryError, DeliveryRejected

MESSAGE_LIMIT = 500  # of the service's answer kept in the error


class WebClient:
    """One notifier's HTTP client: it keeps connections to the service open between deliveries
    (a TLS handshake per status would cost more than the status itself); closed with the
    notification service (:meth:`aclose`)."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _current(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._session, self._loop = aiohttp.ClientSession(), loop
        return self._session

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed and self._loop is asyncio.get_running_loop():
            await session.close()

    async def send(
        self,
        method: str,
        url: str,
        *,
        body: Any = None,
        form: dict[str, str] | None = None,
        headers: dict[str, str],
        timeout: float,
    ) -> str:
        """Send `body` as JSON (or `form` url-encoded); returns the answer's text (raises as the
        module doc says)."""
        data: Any
        if form is not None:
            data, content_type = form, "application/x-www-form-urlencoded"
        else:
            data, content_type = json.dumps(body).encode(), "application/json"
        all_headers = {"Content-Type": content_type, "User-Agent": "gantry", **headers}
        try:
            async with self._current().request(method, url, data=data, headers=all_headers,
                                               timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                text = await resp.text(errors="replace")
                status = resp.status
        except TimeoutError:
            raise DeliveryError(f"{method} {url}: no answer within {timeout:g}s") from None
        except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError) as exc:
            raise DeliveryError(f"{method} {url}: {exc or type(exc).__name__}") from exc
        if 200 <= status < 300:
            return text
        message = service_message(text)
        error = f"{method} {url}: HTTP {status}" + (f": {message}" if message else "")
        if 400 <= status < 500 and status not in (408, 429):
            raise DeliveryRejected(error)
        raise DeliveryError(error)


def service_message(text: str) -> str:
    """The service's explanation: the `message`/`error` of a JSON answer, else the text."""
    text = text.strip()
    try:
        doc = json.loads(text)
    except ValueError:
        return text[:MESSAGE_LIMIT]
    if isinstance(doc, dict):
        for key in ("message", "error_description", "error"):
            value = doc.get(key)
            if isinstance(value, dict):  # Bitbucket Cloud: {"error": {"message": ...}}
                value = value.get("message")
            if isinstance(value, str) and value:
                return value[:MESSAGE_LIMIT]
        errors = doc.get("errors")  # Bitbucket Server: {"errors": [{"message": ...}]}
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("message", ""))[:MESSAGE_LIMIT]
    return text[:MESSAGE_LIMIT]
