"""MailNotifier against a real SMTP server (aiosmtpd on loopback): rendering, plain SMTP, AUTH,
STARTTLS with a test certificate, implicit TLS, and refusals that become DeliveryErrors."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path

import pytest

from coordinator.domain.model import Build, CaseResult, Change, LogInfo, Step
from coordinator.domain.results import Result
from notifiers.base import DeliveryError
from notifiers.mail import MailNotifier
from notifiers.render import FAILING_TESTS, MessageContext
from tests.net import reserved_port
from tests.notifiers.conftest import SmtpServer, TlsFiles, authenticator


def context(result: Result = Result.FAILURE, url: str = "") -> MessageContext:
    build = Build(
        id=1, builder="runtests", number=7, worker="w1", build_request_id=1, buildset_id=3,
        started_at=1.0, finished_at=2.0, result=result, state_string="failed test",
        reason="a change",
        changes=[Change(author="Jane Doe <jane@example.org>", revision="abcdef1234567890",
                        branch="main", repository="r", comments="fix <the> frobnicator"),
                 Change(author="bob", revision="1234", branch="main", repository="r")],
        steps=[Step(id=1, build_id=1, number=0, name="compile", result=Result.SUCCESS),
               Step(id=2, build_id=1, number=1, name="test", result=result,
                    logs=[LogInfo(id=5, step_id=2, name="stdio", type="s")])],
    )
    return MessageContext(build=build, previous=Result.SUCCESS, failing_step="test",
                        log_tail=["line 1", "AssertionError: 1 != 2"], url=url)


def test_default_message_shows_builder_result_changes_failing_step_log_and_link() -> None:
    n = MailNotifier("ci@example.org", extraRecipients=["team@example.org"], lookup="example.org")
    payload = n.render("build.finished", [context(url="https://ci.example.org/builders/runtests/builds/7")])
    assert payload is not None
    assert payload["to"] == ["team@example.org", "jane@example.org", "bob@example.org"]
    assert payload["subject"] == "Gantry: failure in runtests #7"
    text = payload["text"]
    for expected in ("Build runtests #7: FAILURE", "State: failed test", "abcdef123456 by Jane Doe",
                     "fix <the> frobnicator", "Failing step: test", "AssertionError: 1 != 2",
                     "https://ci.example.org/builders/runtests/builds/7"):
        assert expected in text
    assert "fix &lt;the&gt; frobnicator" in payload["html"]
    assert '<a href="https://ci.example.org/builders/runtests/builds/7">' in payload["html"]
    msg = MailNotifier.message(payload)
    assert msg.is_multipart()
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]


def test_without_a_url_the_link_is_the_cli_command_and_templates_are_used() -> None:
    n = MailNotifier("ci@example.org", extraRecipients=["a@example.org"], html=None,
                     subject="[$builder] $result by $authors", body="$builder#$number $unknown $failing_step")
    payload = n.render("build.finished", [context()])
    assert payload is not None
    assert payload["subject"] == "[runtests] FAILURE by Jane Doe <jane@example.org>, bob"
    assert payload["text"] == "runtests#7 $unknown test"
    assert payload["html"] is None
    assert not MailNotifier.message(payload).is_multipart()
    assert "gantry build runtests 7" in MailNotifier("c@x.org", extraRecipients=["a@x.org"]).render(
        "build.finished", [context()])["text"]  # type: ignore[index]


def test_nobody_to_mail_renders_nothing() -> None:
    n = MailNotifier("ci@example.org", sendToInterestedUsers=False)
    assert n.render("build.finished", [context()]) is None


def test_one_mail_per_buildset_summarises_its_builds() -> None:
    n = MailNotifier("ci@example.org", extraRecipients=["a@example.org"], buildSetSummary=True)
    ok = context(Result.SUCCESS)
    ok.build.builder = "docs"
    payload = n.render("buildset.finished", [context(), ok])
    assert payload is not None
    assert payload["subject"] == "Gantry: buildset 3 failure"
    assert "runtests #7: FAILURE" in payload["text"] and "docs #7: SUCCESS" in payload["text"]
    assert n.events == ("buildset.finished",)


def payload_to(*to: str) -> dict[str, object]:
    return {"from": "ci@example.org", "to": list(to), "subject": "hello", "text": "body",
            "html": "<p>body</p>", "message_id": "<1@gantry>"}


async def test_plain_smtp(smtp_servers: Callable[..., SmtpServer]) -> None:
    server = smtp_servers()
    n = MailNotifier("ci@example.org", relayhost="127.0.0.1", smtpPort=server.port, timeout=5)
    await n.deliver(payload_to("jane@example.org", "bob@example.org"))
    (got,) = server.messages()
    assert got.recipients == ["jane@example.org", "bob@example.org"]
    assert got.message["Subject"] == "hello" and got.message["Message-ID"] == "<1@gantry>"
    assert got.message.get_body(("plain",)).get_content().strip() == "body"  # type: ignore[union-attr]
    assert got.message.get_body(("html",)).get_content().strip() == "<p>body</p>"  # type: ignore[union-attr]


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_auth_with_a_password_from_a_secret_file(
    smtp_servers: Callable[..., SmtpServer], tmp_path: Path
) -> None:
    server = smtp_servers(authenticator=authenticator("ci", "s3cret"), auth_require_tls=False,
                          auth_required=True)
    secret = tmp_path / "smtp.secret"
    secret.write_text("s3cret\n")
    n = MailNotifier("ci@example.org", relayhost="127.0.0.1", smtpPort=server.port,
                     smtpUser="ci", smtpPassword=secret, timeout=5)
    await n.deliver(payload_to("jane@example.org"))
    assert [m.login for m in server.messages()] == ["ci"]

    wrong = MailNotifier("ci@example.org", relayhost="127.0.0.1", smtpPort=server.port,
                         smtpUser="ci", smtpPassword=lambda: "nope", timeout=5)
    with pytest.raises(DeliveryError, match="SMTP 127.0.0.1"):
        await wrong.deliver(payload_to("jane@example.org"))
    assert len(server.messages()) == 1


async def test_starttls_with_a_test_certificate_and_auth(
    smtp_servers: Callable[..., SmtpServer], tls_files: TlsFiles
) -> None:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tls_files.cert, tls_files.key)
    server = smtp_servers(tls_context=ctx, require_starttls=True, auth_required=True,
                          authenticator=authenticator("ci", "pw"))
    n = MailNotifier("ci@example.org", relayhost="localhost", smtpPort=server.port, useTls=True,
                     smtpUser="ci", smtpPassword="pw", smtpCaFile=str(tls_files.cert), timeout=5)
    await n.deliver(payload_to("jane@example.org"))
    assert [m.login for m in server.messages()] == ["ci"]

    # Without STARTTLS the server refuses; with an unknown CA the client refuses.
    plain = MailNotifier("ci@example.org", relayhost="localhost", smtpPort=server.port, timeout=5)
    with pytest.raises(DeliveryError):
        await plain.deliver(payload_to("jane@example.org"))
    untrusted = MailNotifier("ci@example.org", relayhost="localhost", smtpPort=server.port,
                             useTls=True, timeout=5)
    with pytest.raises(DeliveryError):
        await untrusted.deliver(payload_to("jane@example.org"))
    assert len(server.messages()) == 1


async def test_a_server_that_is_down_is_a_delivery_error() -> None:
    with reserved_port() as nobody:
        n = MailNotifier("ci@example.org", relayhost="127.0.0.1", smtpPort=nobody, timeout=5)
        with pytest.raises(DeliveryError, match="SMTP 127.0.0.1"):
            await n.deliver(payload_to("jane@example.org"))


def test_configuration_errors_are_collected() -> None:
    n = MailNotifier("not-an-address", mode=("failing", "sometimes"), useTls=True, useSmtps=True,
                     smtpPassword="x", smtpPort=0, extraRecipients="a@b.org")  # type: ignore[arg-type]
    text = "\n".join(n.errors)
    for expected in ("fromaddr", "unknown mode 'sometimes'", "useTls", "smtpUser", "smtpPort",
                     "extraRecipients"):
        assert expected in text


def test_the_failing_tests_and_their_messages_are_in_the_message() -> None:
    ctx = context()
    ctx.failing_tests = [CaseResult("test_div", "pkg.Math", "failed", 0.1, "ZeroDivisionError: <x>"),
                         CaseResult("test_io", "", "error", None, "")]
    payload = MailNotifier("ci@example.org", extraRecipients=["a@example.org"]).render("build.finished", [ctx])
    assert payload is not None
    assert "Failing tests:\n  pkg.Math.test_div: ZeroDivisionError: <x>\n  test_io\n" in payload["text"]
    assert "pkg.Math.test_div: ZeroDivisionError: &lt;x&gt;" in payload["html"]
    ctx.failing_tests = [CaseResult(f"t{i}", "", "failed") for i in range(FAILING_TESTS)]
    payload = MailNotifier("ci@example.org", extraRecipients=["a@example.org"]).render("build.finished", [ctx])
    assert payload is not None and f"Failing tests (the first {FAILING_TESTS}):" in payload["text"]
