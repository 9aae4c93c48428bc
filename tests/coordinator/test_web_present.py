"""How the pages show values: results with icon and word, safe links, a triggered build's parent."""

from __future__ import annotations

import copy
from typing import Any, cast

from coordinator.web.api.backend import Backend
from coordinator.web.ui import views
from coordinator.web.ui.pages import Pages
from coordinator.web.ui.present import capacity, duration, favicon, hold, icon, label, link, parent
from coordinator.web.ui.views import Filters, status_of, worst


def test_a_result_is_an_icon_and_a_word_not_only_a_colour() -> None:
    assert (icon("FAILURE"), label("FAILURE")) == ("✖", "failure")
    assert (icon("SUCCESS"), label("SUCCESS")) == ("✔", "success")
    assert "%23d3343a" in favicon("FAILURE") and favicon("SUCCESS") != favicon("FAILURE")


def test_links_are_http_or_paths_of_the_ui() -> None:
    assert link("https://example.org/x") == "https://example.org/x"
    assert link("builders/child/builds/3") == "/builders/child/builds/3"
    assert link("javascript:alert(1)") == "#" and link(" JavaScript:alert(1)") == "#"
    assert link("//evil.example/x") == "#"


def test_the_parent_of_a_triggered_build_comes_from_its_reason() -> None:
    reason = "The Triggerable scheduler named 'tests' triggered this build (from main-build/12)"
    assert parent(reason) == {"builder": "main-build", "number": "12"}
    assert parent("A build was forced: from curl") is None


def test_statuses_and_filters() -> None:
    assert status_of(None) == "NONE"
    assert status_of({"complete": False, "result": "SUCCESS"}) == "RUNNING"
    assert worst(["SUCCESS", "FAILURE", "RUNNING"]) == "FAILURE"
    flt = Filters(tags=["linux"], name="gcc")
    assert flt.keep({"name": "linux-gcc", "tags": ["linux"]})
    assert not flt.keep({"name": "linux-clang", "tags": ["linux"]})
    assert not flt.keep({"name": "mac-gcc", "tags": ["mac"]})
    assert duration(5.25) == "5.2 s" and duration(3725) == "1 h 02 min"


class FakeApi:
    """Canned ControlService replies in the API's JSON shape: what the views read."""

    def __init__(self, **replies: dict[str, Any]) -> None:
        self.replies = replies
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def get(self, rpc: str, **fields: Any) -> dict[str, Any]:
        self.calls.append((rpc, fields))
        return copy.deepcopy(self.replies[rpc])


def render(template: str, data: dict[str, Any]) -> str:
    """A page as the UI renders it (the same Jinja environment as Pages)."""
    env = Pages(cast(Backend, None)).env
    return env.get_template(template).render(
        **data, data=data, since=0, fragment=True, path="/x", query_string="", static=lambda name: name,
    )


def worker(name: str, state: str = "active", reason: str = "", capacity_reason: str = "config") -> dict[str, Any]:
    return {"name": name, "connected": True, "since": "2026-01-01T00:00:00Z", "running_builds": [],
            "max_builds": 2, "info": {}, "capacity_reason": capacity_reason, "state": state,
            "state_reason": reason}


async def test_a_held_worker_shows_its_hold_and_reason_and_the_capacity_and_why() -> None:
    assert hold(worker("w")) == "" and hold(worker("w", "draining")) == "draining"
    assert hold(worker("w", "paused", "kernel upgrade")) == "paused: kernel upgrade"
    assert capacity(worker("w", capacity_reason="agent --max-builds; config 4")) == \
        "2 (agent --max-builds; config 4)"
    workers = [worker("w1", "paused", "kernel upgrade"), worker("w2"), worker("w3", "draining", "SIGTERM")]
    api = FakeApi(ListWorkers={"workers": workers}, ListBuilders={"builders": []})
    page = render("workers.html", await views.workers(cast(Backend, api)))
    assert "paused: kernel upgrade" in page and "draining: SIGTERM" in page
    assert page.count('data-hold="') == 2 and "2 (config)" in page

    api = FakeApi(ListWorkers={"workers": workers}, ListBuilders={"builders": []}, ListBuilds={"builds": []})
    doc = await views.home(cast(Backend, api), Filters())
    assert doc["workers_held"] == 2
    page = render("home.html", doc)
    assert "(2 paused or draining)" in page and "paused: kernel upgrade" in page
