"""How the pages show values: results with icon and word, safe links, a triggered build's parent."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, cast

from coordinator.web.api.backend import Backend
from coordinator.web.ui import views
from coordinator.web.ui.pages import Pages
from coordinator.web.ui.present import capacity, duration, favicon, hold, icon, label, link, parent, span
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

    def __init__(self, **replies: dict[str, Any] | Callable[..., dict[str, Any]]) -> None:
        self.replies = replies
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def get(self, rpc: str, **fields: Any) -> dict[str, Any]:
        self.calls.append((rpc, fields))
        reply = self.replies[rpc]
        return copy.deepcopy(reply(**fields) if callable(reply) else reply)


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


def builder(name: str) -> dict[str, Any]:
    return {"name": name, "tags": [], "workers": ["w1"], "pending_requests": 0}


def a_build(builder: str, number: int, build_id: int, result: str = "SUCCESS", buildset: int = 7,
            request: int = 0) -> dict[str, Any]:
    return {"id": build_id, "builder": builder, "number": number, "buildset_id": buildset,
            "build_request_id": request or build_id, "complete": True, "result": result,
            "started_at": "2026-01-01T00:00:00Z", "finished_at": "2026-01-01T00:01:00Z",
            "sourcestamps": [], "steps": [], "state_string": "", "worker": "w1", "reason": "", "properties": []}


MATRIX = [builder("lint"), builder("test@3.11,linux"), builder("docs"), builder("test@3.12,linux")]


async def test_a_matrix_builders_combinations_are_grouped_under_its_name() -> None:
    assert views.matrix_of("test@3.12,linux") == ("test", "3.12,linux") and views.matrix_of("lint") == ("lint", "")
    builds = [a_build("test@3.12,linux", 1, 3, "FAILURE"), a_build("test@3.11,linux", 1, 2), a_build("lint", 1, 1)]
    replies: dict[str, Any] = {"ListBuilders": {"builders": MATRIX}, "ListBuilds": {"builds": builds},
               "ListWorkers": {"workers": []}, "ListPendingRequests": {"requests": []}}

    home = await views.home(cast(Backend, FakeApi(**replies)), Filters())
    assert [(g["name"], [c["name"] for c in g["items"]]) for g in home["groups"]] == [
        ("lint", ["lint"]), ("test", ["test@3.11,linux", "test@3.12,linux"]), ("docs", ["docs"])]
    assert home["groups"][1]["status"] == "FAILURE"  # the worst of its combinations
    page = render("home.html", home)
    assert page.count('data-matrix="test"') == 1 and ">3.12,linux<" in page

    fall = await views.waterfall(cast(Backend, FakeApi(**replies)), Filters(), 100)
    assert [b["name"] for b in fall["builders"]] == ["lint", "test@3.11,linux", "test@3.12,linux", "docs"]
    assert fall["matrices"] == [{"name": "test", "col": 3, "span": 2}] and fall["head_row"] == 2
    assert {b["builder"]: b["col"] for b in fall["builds"]} == {"lint": 2, "test@3.11,linux": 3, "test@3.12,linux": 4}
    assert min(r["row"] for r in fall["rows"]) == 3  # below the matrix band and the heads
    page = render("waterfall.html", fall)
    assert "grid-column:3 / span 2" in page and ">3.11,linux</a>" in page

    grid = await views.grid(cast(Backend, FakeApi(**replies)), Filters())
    assert [(b["name"], b["matrix"]) for b in grid["builders"]] == [
        ("lint", ""), ("test@3.11,linux", "test"), ("test@3.12,linux", "test"), ("docs", "")]
    assert render("grid.html", grid).count('class="matrix-row"') == 1


async def test_the_console_puts_a_matrixs_combinations_side_by_side_under_its_name() -> None:
    stamp = [{"codebase": "", "repository": "", "branch": "main", "revision": "abc123", "project": ""}]
    builds = [{**a_build("test@3.12,linux", 1, 3, "FAILURE"), "sourcestamps": stamp},
              {**a_build("lint", 1, 1), "sourcestamps": stamp}]
    change = {"revision": "abc123", "author": "ada", "comments": "fix the parser"}
    api = FakeApi(ListBuilders={"builders": MATRIX}, ListBuilds={"builds": builds},
                  ListChanges={"changes": [change]})
    console = await views.console(cast(Backend, api), Filters())
    assert console["builders"] == ["lint", "test@3.11,linux", "test@3.12,linux", "docs"]
    assert [(g["name"], g["matrix"], [c["combination"] for c in g["columns"]]) for g in console["groups"]] == [
        ("lint", False, [""]), ("test", True, ["3.11,linux", "3.12,linux"]), ("docs", False, [""])]
    assert console["status"] == "FAILURE"
    page = render("console.html", console)
    assert 'colspan="2" class="matrix-head-col" data-matrix="test"' in page
    assert page.count('rowspan="2"') == 3  # "Change" and the two plain builders span both head rows
    assert '<th scope="col" title="test@3.12,linux">3.12,linux</th>' in page
    # The cells follow the heads' order: the failing combination is the third builder column.
    row = page.split("<tbody>")[1]
    assert row.index("/builders/lint/builds/1") < row.index("/builders/test%403.12%2Clinux/builds/1")

    plain = FakeApi(ListBuilders={"builders": [builder("lint")]}, ListBuilds={"builds": []},
                    ListChanges={"changes": []})
    assert "rowspan" not in render("console.html", await views.console(cast(Backend, plain), Filters()))


async def test_the_build_page_of_a_combination_links_its_siblings_of_the_same_buildset() -> None:
    this = a_build("test@3.11,linux", 4, 20, "FAILURE", request=5)
    near = [a_build("test@3.12,linux", 9, 21, "SUCCESS", request=6), this,
            a_build("test@3.12,linux", 8, 19, "SUCCESS", buildset=6, request=3)]  # an older buildset's
    requests = [{"id": r, "builder": b, "complete": False, "result": "SUCCESS", "buildset_id": 7}
                for r, b in ((5, "test@3.11,linux"), (6, "test@3.12,linux"), (7, "test@3.13,linux"), (8, "lint"))]
    api = FakeApi(GetBuild={**this, "steps": []}, ListBuildRequests={"requests": requests},
                  ListBuilds={"builds": near})
    doc = await views.build(cast(Backend, api), "test@3.11,linux", 4)
    assert doc["siblings"] == [
        {"builder": "test@3.11,linux", "combination": "3.11,linux", "number": 4, "status": "FAILURE", "current": True},
        {"builder": "test@3.12,linux", "combination": "3.12,linux", "number": 9, "status": "SUCCESS",
         "current": False},
        {"builder": "test@3.13,linux", "combination": "3.13,linux", "number": None, "status": "PENDING",
         "current": False},
    ]
    assert ("ListBuildRequests", {"buildset_id": 7, "limit": 1000}) in api.calls
    page = render("build.html", doc)
    assert 'href="/builders/test%403.12%2Clinux/builds/9"' in page and "3.13,linux (pending)" in page

    plain = FakeApi(GetBuild={**a_build("lint", 1, 1), "steps": []})
    assert (await views.build(cast(Backend, plain), "lint", 1))["siblings"] == []
    assert [c[0] for c in plain.calls] == ["GetBuild"]  # no extra read for a plain builder


async def test_the_builder_history_filters_by_branch_and_its_links_keep_the_filter() -> None:
    builds = [a_build("lint", n, n) for n in range(25, 0, -1)]
    for b in builds:
        b["sourcestamps"] = [{"codebase": "", "repository": "r", "branch": "release/1.x", "revision": "abc"}]
    api = FakeApi(GetBuilder={"name": "lint", "tags": [], "workers": [], "steps": [], "force_scheduler": ""},
                  ListBuilds={"builds": builds}, ListPendingRequests={"requests": []},
                  ListTests={"builds": 0, "tests": [], "runs": []})
    doc = await views.builder(cast(Backend, api), "lint", 0, [2], "release/1.x")
    assert ("ListBuilds", {"builder": "lint", "limit": views.PAGE, "before_id": 0, "results": [2],
                           "branch": "release/1.x"}) in api.calls
    assert doc["branch"] == "release/1.x" and doc["branches"] == ["release/1.x"]
    assert doc["status"] == "NONE"  # a filtered page does not speak for the builder
    doc["results"] = ["FAILURE"]
    page = render("builder.html", doc)
    assert 'name="branch" value="release/1.x"' in page and '<input type="hidden" name="result" value="FAILURE">' in page
    assert "?branch=release/1.x&amp;result=SUCCESS" in page  # a result link keeps the branch
    assert "before=1&amp;result=FAILURE&amp;branch=release/1.x" in page  # and so does the next page


def a_test(name: str, outcome: str = "failed", **summary: Any) -> dict[str, Any]:
    latest = {"name": name, "outcome": outcome, "duration": "2.500s", "message": "assert 1 == 2\nmore",
              "build_number": 12, "revision": "abcdef1234567890"}
    return {"latest": latest, "runs": 5, "failures": 2, "flips": 0, "failing_since": 11, "newly_failing": False,
            "mean_duration": None, **summary}


async def test_the_builder_page_shows_failing_flaky_and_slowest_tests_and_one_tests_runs() -> None:
    assert span("2.500s") == "2.5 s" and span(None) == "" and span("soon") == ""
    by_view = {
        "TEST_VIEW_FAILING": {"builds": 20, "tests": [a_test("t.Api.test_new", newly_failing=True)], "runs": []},
        "TEST_VIEW_FLAKY": {"builds": 20, "tests": [a_test("t.Db.test_race", "passed", flips=3)], "runs": []},
        "TEST_VIEW_SLOWEST": {"builds": 20, "tests": [a_test("t.Big.test_all", "passed", mean_duration="1s")],
                              "runs": []},
        "TEST_VIEW_HISTORY": {"builds": 20, "tests": [], "runs": [a_test("t.Db.test_race")["latest"]]},
    }
    api = FakeApi(GetBuilder={"name": "lint", "tags": [], "workers": [], "steps": [], "force_scheduler": ""},
                  ListBuilds={"builds": []}, ListPendingRequests={"requests": []},
                  ListTests=lambda **f: by_view[f["view"]])
    doc = await views.builder(cast(Backend, api), "lint", 0, [], "", "t.Db.test_race")
    tests = doc["tests"]
    assert [t["latest"]["name"] for t in tests["failing"] + tests["flaky"] + tests["slowest"]] == [
        "t.Api.test_new", "t.Db.test_race", "t.Big.test_all"]
    assert tests["history"][0]["build_number"] == 12
    assert ("ListTests", {"builder": "lint", "view": "TEST_VIEW_HISTORY", "name": "t.Db.test_race",
                          "limit": views.PAGE}) in api.calls
    page = render("builder.html", doc)
    assert "t.Api.test_new" in page and ">new</span>" in page and "assert 1 == 2" in page and "more" not in page
    assert "<td>3</td>" in page  # the flaky test's flips
    assert "<td>2.5 s</td><td>1.0 s</td>" in page  # the slowest test's time and its mean before
    assert 'href="/x?test=t.Db.test_race#tests"' in page and "Runs of t.Db.test_race" in page
    page = render("builder.html", {**doc, "branch": "main", "results": ["FAILURE"]})
    assert 'href="/x?result=FAILURE&amp;branch=main&amp;test=t.Db.test_race#tests"' in page  # filters kept

    quiet = FakeApi(GetBuilder={"name": "lint", "tags": [], "workers": [], "steps": [], "force_scheduler": ""},
                    ListBuilds={"builds": []}, ListPendingRequests={"requests": []},
                    ListTests={"builds": 0, "tests": [], "runs": []})
    doc = await views.builder(cast(Backend, quiet), "lint", 0, [], "", "")
    assert [c[0] for c in quiet.calls].count("ListTests") == 1  # no tests recorded: one read
    assert "No test results recorded" in render("builder.html", doc)
