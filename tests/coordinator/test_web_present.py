"""How the pages show values: results with icon and word, safe links, a triggered build's parent."""

from __future__ import annotations

from coordinator.web.ui.present import duration, favicon, icon, label, link, parent
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
