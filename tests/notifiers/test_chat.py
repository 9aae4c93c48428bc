"""Chat incoming webhooks (Slack, Discord, Mattermost, Teams) through the real notification
service against local stand-ins checking each service's documented format
(tests/notifiers/fakes.py): MailNotifier's modes, the message template, the failing step's log,
a webhook URL from the secrets providers, and a refused message failed with the reason."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from coordinator.config.secrets import SecretInAFile
from coordinator.domain.properties.renderables import Secret
from coordinator.domain.results import Result
from notifiers.base import Notifier
from notifiers.chat import DiscordNotifier, MattermostNotifier, SlackNotifier, TeamsNotifier
from notifiers.service import NotificationService
from tests.notifiers.conftest import Store, run_build, settled
from tests.notifiers.fakes import FakeServices

URL = "https://ci.example.org"








@pytest.mark.parametrize(("make", "service"), [
    (lambda url: SlackNotifier(url + "/services/T000/B000/XXXX", mode=("failing",), channel="#ci"), "slack"),
    (lambda url: MattermostNotifier(url + "/hooks/mm0key", mode=("failing",), username="gantry"), "mattermost"),
    (lambda url: DiscordNotifier(url + "/api/webhooks/1234/d1sc0rd", mode=("failing",)), "discord"),
    (lambda url: TeamsNotifier(url + "/workflows/abc/triggers/manual/paths/invoke", mode=("failing",)), "teams"),
])
async def test_each_format_posts_failures_only_with_the_log(
    mem: Store, mem_services: Callable[..., NotificationService], services_fake: FakeServices,
    make: Callable[[str], Notifier], service: str,
) -> None:
    await mem_services([make(services_fake.url)]).start()
    await run_build(mem.db, "unit", Result.SUCCESS)  # mode failing: nothing
    await run_build(mem.db, "unit", Result.FAILURE, log_text="FAILED test_frob\n")
    (n,) = await settled(mem, 1)
    assert n.state == "sent" and services_fake.violations == []
    (call,) = services_fake.of(service)
    text = str(call.body)
    assert f"Gantry: unit #2 failure - {URL}/builders/unit/builds/2" in text
    assert "Failing step: test" in text and "FAILED test_frob" in text
    assert n.payload["summary"].endswith(f"Gantry: unit #2 failure - {URL}/builders/unit/builds/2")


async def test_template_and_a_webhook_url_from_a_secret(
    mem: Store, mem_services: Callable[..., NotificationService], services_fake: FakeServices, tmp_path: Path
) -> None:
    (tmp_path / "slack_hook").write_text(services_fake.url + "/services/T000/B000/XXXX\n")
    slack = SlackNotifier(Secret("slack_hook"), mode=("problem", "change"), details="",
                          message=":rotating_light: $builder #$number is $result_lower (was $previous)")
    await mem_services([slack], secrets=[SecretInAFile(tmp_path)]).start()
    for result in (Result.SUCCESS, Result.SUCCESS, Result.FAILURE, Result.FAILURE, Result.SUCCESS):
        await run_build(mem.db, "unit", result)
    await settled(mem, 2)
    assert sorted(c.body["text"] for c in services_fake.of("slack")) == [  # delivered concurrently
        ":rotating_light: unit #3 is failure (was SUCCESS)",
        ":rotating_light: unit #5 is success (was FAILURE)"]
    assert all("attachments" not in c.body for c in services_fake.of("slack"))
    assert "/services/" not in str(await mem.db.outbox.list_notifications(10))  # the URL is not stored


async def test_a_refused_message_fails_with_the_services_reason(
    mem: Store, mem_services: Callable[..., NotificationService], services_fake: FakeServices
) -> None:
    await mem_services([SlackNotifier(services_fake.url + "/services/T000/B000/gone", mode="all")]).start()
    await run_build(mem.db, "unit", Result.SUCCESS)
    (n,) = await settled(mem, 1)
    assert (n.state, n.attempts) == ("failed", 1) and n.last_error.endswith("HTTP 404: no_service")


def test_configuration_errors() -> None:
    assert SlackNotifier("hooks.slack.com/x").errors == [
        "webhook_url must be an http:// or https:// URL (or Secret('name') holding one)"]
    assert DiscordNotifier("https://d/x", mode="sometimes").errors[0].startswith("unknown mode 'sometimes'")
    assert TeamsNotifier(42).errors == ["webhook_url must be a URL or Secret('name'), not 42"]  # type: ignore[arg-type]
