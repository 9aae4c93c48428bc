"""MailNotifier: Buildbot's mail reporter, delivered with aiosmtplib from the background."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterable, Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

from coordinator.domain.results import Result, worst
from notifiers.base import DeliveryError, Notifier
from notifiers.decide import DEFAULT_MODE, Lookup, recipients
from notifiers.render import (
    DEFAULT_BUILDSET_ITEM,
    DEFAULT_BUILDSET_SUBJECT,
    DEFAULT_HTML,
    DEFAULT_SUBJECT,
    DEFAULT_TEXT,
    MessageContext,
    expand,
)

Password = str | Path | Callable[[], str] | None


class MailNotifier(Notifier):
    """``MailNotifier(fromaddr, mode=("failing", "passing", "warnings"), ...)`` — see README."""

    kind = "mail"

    def __init__(
        self,
        fromaddr: str,
        mode: str | Iterable[str] = DEFAULT_MODE,
        builders: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        extraRecipients: Sequence[str] = (),  # noqa: N803 - Buildbot's option names
        sendToInterestedUsers: bool = True,  # noqa: N803
        lookup: Lookup = None,
        buildSetSummary: bool = False,  # noqa: N803
        subject: str = DEFAULT_SUBJECT,
        body: str = DEFAULT_TEXT,
        html: str | None = DEFAULT_HTML,
        relayhost: str = "localhost",
        smtpPort: int = 25,  # noqa: N803
        useTls: bool = False,  # noqa: N803
        useSmtps: bool = False,  # noqa: N803
        smtpUser: str | None = None,  # noqa: N803
        smtpPassword: Password = None,  # noqa: N803
        smtpCaFile: str | None = None,  # noqa: N803
        timeout: float = 30.0,
        title: str = "Gantry",
        name: str = "MailNotifier",
    ) -> None:
        super().__init__(name, mode, builders, tags)
        self.fromaddr = fromaddr
        self.extraRecipients = list(extraRecipients)
        self.sendToInterestedUsers = sendToInterestedUsers
        self.lookup = lookup
        self.buildSetSummary = buildSetSummary
        self.subject = subject
        self.body = body
        self.html = html
        self.relayhost = relayhost
        self.smtpPort = smtpPort
        self.useTls = useTls
        self.useSmtps = useSmtps
        self.smtpUser = smtpUser
        self.smtpPassword = smtpPassword
        self.smtpCaFile = smtpCaFile
        self.timeout = timeout
        self.title = title
        self.events = ("buildset.finished",) if buildSetSummary else ("build.finished",)
        if not isinstance(fromaddr, str) or "@" not in fromaddr:
            self.errors.append(f"fromaddr must be a mail address, not {fromaddr!r}")
        if isinstance(extraRecipients, str):
            self.errors.append("extraRecipients must be a list of addresses, not a string")
        if not (isinstance(smtpPort, int) and 0 < smtpPort < 65536):
            self.errors.append(f"smtpPort must be a port number, not {smtpPort!r}")
        if useTls and useSmtps:
            self.errors.append("use either useTls (STARTTLS) or useSmtps (TLS from the start)")
        if smtpPassword is not None and smtpUser is None:
            self.errors.append("smtpPassword needs smtpUser")
        if not (isinstance(timeout, int | float) and timeout > 0):
            self.errors.append(f"timeout must be seconds > 0, not {timeout!r}")
        if lookup is not None and not (callable(lookup) or isinstance(lookup, str)):
            self.errors.append("lookup must be a domain string or a function author -> address")

    # ---------------------------------------------------------------- rendering

    def render(self, event: str, builds: list[MessageContext]) -> dict[str, Any] | None:
        if not builds:
            return None
        authors = [c.author for ctx in builds for c in ctx.build.changes]
        to = recipients(authors, self.extraRecipients, self.sendToInterestedUsers, self.lookup)
        if not to:
            return None
        if len(builds) == 1 and not self.buildSetSummary:
            values = builds[0].fields(self.title)
            subject = expand(self.subject, values)
            text = expand(self.body, values)
            html = None if self.html is None else expand(self.html, values)
        else:
            result = Result.SUCCESS
            for ctx in builds:
                result = worst(result, ctx.build.result or Result.SUCCESS)
            first = builds[0].fields(self.title)
            values = {**first, "result": result.name, "result_lower": result.name.lower()}
            subject = expand(self.subject if self.subject != DEFAULT_SUBJECT
                             else DEFAULT_BUILDSET_SUBJECT, values)
            # One mail for the buildset: each build's own body, one after the other.
            text = "".join(expand(DEFAULT_BUILDSET_ITEM, c.fields(self.title)) for c in builds)
            text += "\n" + "\n".join(expand(self.body, c.fields(self.title)) for c in builds)
            html = None if self.html is None else "\n<hr>\n".join(
                expand(self.html, c.fields(self.title)) for c in builds)
        return {"from": self.fromaddr, "to": to, "subject": subject, "text": text, "html": html,
                # fixed when queued: a retried message keeps its Message-ID
                "message_id": make_msgid("gantry")}

    @staticmethod
    def message(payload: dict[str, Any], msgid: str = "") -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = payload["from"]
        msg["To"] = ", ".join(payload["to"])
        msg["Subject"] = payload["subject"]
        msg["Date"] = formatdate(localtime=True)
        msg["Message-ID"] = msgid or make_msgid("gantry")
        msg.set_content(payload["text"])
        if payload.get("html"):
            msg.add_alternative(payload["html"], subtype="html")
        return msg

    # ---------------------------------------------------------------- delivery

    def password(self) -> str | None:
        """The SMTP password: a string, the first line of a secret file (a Path), or a
        function's return value — read at send time, so a rotated secret is picked up."""
        pw = self.smtpPassword
        if pw is None:
            return None
        if isinstance(pw, Path):
            return pw.read_text().strip()
        if callable(pw):
            return pw()
        return pw

    async def deliver(self, payload: dict[str, Any]) -> None:
        import aiosmtplib  # only the coordinator's delivery needs it, not checkconfig

        context: ssl.SSLContext | None = None
        if self.useTls or self.useSmtps:
            context = ssl.create_default_context(cafile=self.smtpCaFile)
        try:
            await aiosmtplib.send(
                self.message(payload, payload.get("message_id", "")),
                sender=payload["from"],
                recipients=payload["to"],
                hostname=self.relayhost,
                port=self.smtpPort,
                username=self.smtpUser,
                password=self.password(),
                use_tls=self.useSmtps,
                start_tls=self.useTls,
                tls_context=context,
                timeout=self.timeout,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP {self.relayhost}:{self.smtpPort}: {exc}") from exc
