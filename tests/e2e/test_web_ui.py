"""The web UI in a real browser: Debian's chromium driven by Playwright (never a downloaded
browser), against a real coordinator and worker. Pages update live from the event stream,
without reloads."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.harness import TIMEOUT, Cluster
from tests.e2e.web import CODEBASES_CONFIG, Web, sse_events, started

playwright_api = pytest.importorskip("playwright.async_api")
CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(240),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (.ci/run installs it)"),
]
WAIT_MS = TIMEOUT * 1000


@asynccontextmanager
async def browser_page(web: Web, errors: list[str]) -> AsyncIterator[Any]:
    """A page of a fresh chromium; console errors and uncaught exceptions land in `errors`."""
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = await (await browser.new_context()).new_page()
            page.set_default_timeout(WAIT_MS)
            page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
            yield page
        finally:
            await browser.close()


async def force(web: Web, builder: str, ticket: str = "GAN-1") -> int:
    async with aiohttp.ClientSession() as s, s.post(
        f"{web.base}/api/v1/builders/{builder}/force", json={"properties": [{"name": "ticket", "value": ticket}]}
    ) as resp:
        assert resp.status == 200, await resp.text()
        return int((await resp.json())["build_request_id"])


async def wait_event(web: Web, kind: str, builder: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as s:
        async for _, _, event in sse_events(s, f"{web.base}/api/v1/events?since=0&builders={builder}"):
            if event["kind"] == kind:
                return event
    raise AssertionError("stream ended")


async def test_every_view_renders_without_console_errors(cluster: Cluster) -> None:
    async with started(cluster) as web:
        await force(web, "ok")
        await force(web, "bad")
        await wait_event(web, "build.finished", "ok")
        await wait_event(web, "build.finished", "bad")
        errors: list[str] = []
        views = ["/", "/waterfall", "/console", "/grid", "/builders/ok", "/builders/ok/builds/1",
                 "/builders/ok/builds/1/steps/compile/logs/stdio", "/workers", "/changes",
                 "/waterfall?tag=team-b", "/builders/bad?result=FAILURE"]
        async with browser_page(web, errors) as page, aiohttp.ClientSession() as s:
            for path in views:
                resp = await page.goto(web.base + path)
                assert resp is not None and resp.status == 200, path
                await page.wait_for_selector("#live")
                assert await page.title(), path
                sep = "&" if "?" in path else "?"
                async with s.get(f"{web.base}{path}{sep}format=json") as r:
                    assert r.status == 200 and r.content_type == "application/json", path
                    await r.json()
            await page.goto(web.base + "/builders/ok/builds/1/steps/compile/logs/stdio")
            await page.wait_for_selector("#log[data-ready]")
            green = page.locator("#log .a-32")  # the ANSI colour, rendered
            assert await green.inner_text() == "green"
            await page.goto(web.base + "/waterfall?tag=team-b")
            assert await page.locator(".wf-head a").all_inner_texts() == ["bad", "slow"]
            assert await page.locator(".wf-build .steps li").first.inner_text() != ""  # steps without hover
        assert errors == []


async def test_a_build_forced_from_the_dialog_appears_on_the_waterfall_and_turns_green(cluster: Cluster) -> None:
    async with started(cluster) as web:
        errors: list[str] = []
        async with browser_page(web, errors) as page:
            await page.goto(web.base + "/builders/ok")
            await page.get_by_role("button", name="Force a build…").click()
            dialog = page.locator("#force-dialog")
            await dialog.get_by_label("ticket").fill("not a ticket")
            await dialog.get_by_role("button", name="Start build").click()
            error = dialog.locator(".error")
            await error.wait_for(state="visible")
            assert "ticket" in await error.inner_text()  # the API's message, in the dialog

            waterfall = await page.context.new_page()
            await waterfall.goto(web.base + "/waterfall")
            await waterfall.evaluate("window.notReloaded = true")
            await dialog.get_by_label("ticket").fill("GAN-42")
            await dialog.get_by_role("button", name="Start build").click()
            await dialog.wait_for(state="hidden")
            await waterfall.locator('.wf-build.r-success[data-build="ok/1"]').wait_for()
            assert await waterfall.evaluate("window.notReloaded") is True
            steps = await waterfall.locator('[data-build="ok/1"] .steps li').all_inner_texts()
            assert [re.sub(r"^\W+", "", s).split()[0] for s in steps] == ["compile", "test"]
        # The refused parameter's reply is the one failed request the browser reports.
        assert errors == ["console: Failed to load resource: the server responded with a status of 400 (Bad Request)"]


async def test_a_live_waterfall_keeps_the_blocks_of_builds_that_did_not_change(cluster: Cluster) -> None:
    """A live update patches the waterfall: the block of a build no event was about is the same
    DOM node afterwards (only laid out again where it moved), the new build's block is added."""
    async with started(cluster) as web:
        await force(web, "ok")
        await wait_event(web, "build.finished", "ok")
        errors: list[str] = []
        async with browser_page(web, errors) as page:
            await page.goto(web.base + "/waterfall")
            await page.locator('.wf-build.r-success[data-build="ok/1"]').wait_for()
            await page.evaluate("""() => { document.querySelector('[data-build="ok/1"]').kept = true;
                                           document.querySelector('.wf-head').kept = true; }""")
            await force(web, "ok")
            await page.locator('.wf-build.r-success[data-build="ok/2"]').wait_for()
            assert await page.evaluate("document.querySelector('[data-build=\"ok/1\"]').kept") is True
            assert await page.evaluate("document.querySelector('.wf-head').kept") is True
            assert await page.locator(".wf-build").count() == 2
        async with aiohttp.ClientSession() as s, s.get(f"{web.base}/waterfall?limit=many") as resp:
            assert resp.status == 400  # a page streamed in two parts still refuses a bad query
            assert "limit" in await resp.text()
        assert errors == []


async def test_a_two_codebase_build_is_forced_from_the_dialogs_codebase_fields(cluster: Cluster) -> None:
    """Each codebase's fields as its CodebaseParameter declares them (a choice, a fixed value, a
    required revision); a bad field's message is the API's, in the dialog; both revisions built."""
    async with started(cluster, CODEBASES_CONFIG) as web:
        errors: list[str] = []
        async with browser_page(web, errors) as page:
            await page.goto(web.base + "/builders/multi")
            await page.get_by_role("button", name="Force a build…").click()
            dialog = page.locator("#force-dialog")
            app = dialog.get_by_role("group", name="Application")
            lib = dialog.get_by_role("group", name="lib")
            assert await app.get_by_label("branch").evaluate("e => e.tagName") == "SELECT"
            assert await app.get_by_label("repository").get_attribute("readonly") is not None
            assert await app.get_by_label("project").count() == 0  # project=None: not on the form
            assert await dialog.get_by_label("Branch", exact=True).count() == 0  # no single-stamp fields
            assert await lib.get_by_label("branch").input_value() == "stable"

            await app.get_by_label("revision").fill("abc123")
            await lib.get_by_label("revision").fill("not hex")
            await dialog.get_by_role("button", name="Start build").click()
            error = dialog.locator(".error")
            await error.wait_for(state="visible")
            assert 'codebase "lib" revision: "not hex" does not match' in await error.inner_text()

            await app.get_by_label("branch").select_option("dev")
            await lib.get_by_label("revision").fill("def456")
            await dialog.get_by_role("button", name="Start build").click()
            await dialog.wait_for(state="hidden")
            await wait_event(web, "build.finished", "multi")
            await page.goto(web.base + "/builders/multi/builds/1")
            stamps = await page.locator("li", has_text="example.org").all_inner_texts()
            assert [" ".join(t.split()) for t in stamps] == [
                "app: https://example.org/app.git dev abc123", "lib: https://example.org/lib.git stable def456"]
        assert errors == ["console: Failed to load resource: the server responded with a status of 400 (Bad Request)"]


async def test_a_failing_build_turns_its_builder_red_on_home(cluster: Cluster) -> None:
    async with started(cluster) as web:
        errors: list[str] = []
        async with browser_page(web, errors) as page:
            await page.goto(web.base + "/")
            await page.evaluate("window.notReloaded = true")
            assert await page.locator('.cell.r-failure').count() == 0
            await force(web, "bad")
            cell = page.locator('.cell.r-failure[data-builder="bad"]')
            await cell.wait_for()
            assert "failure" in await cell.inner_text()  # the word and the icon, not colour alone
            assert "%23d3343a" in (await page.locator("#favicon").get_attribute("href") or "")
            assert await page.evaluate("window.notReloaded") is True
        assert errors == []


async def test_the_log_viewer_follows_a_running_step(cluster: Cluster) -> None:
    async with started(cluster) as web:
        errors: list[str] = []
        await force(web, "slow")
        await wait_event(web, "step.started", "slow")
        async with browser_page(web, errors) as page:
            await page.goto(web.base + "/builders/slow/builds/1/steps/run/logs/stdio")
            await page.wait_for_selector("#log[data-ready]")
            first = await page.locator("#log .l").count()
            # Lines keep arriving while the page is open: the viewer appends them. The target is
            # past what the first load held (lines 0..first-1), however late the page loaded.
            target = first + 3
            await page.locator("#log .l", has_text=re.compile(rf"^line {target}\s*$")).wait_for()
            assert await page.locator("#log .l").count() > first
            # Each line shows when it was printed (the worker's time, a clock column by default).
            stamp = page.locator("#log .l", has_text=re.compile(rf"^line {target}\s*$")).locator(".ts")
            assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3}", await stamp.get_attribute("data-c") or "")
            async with aiohttp.ClientSession() as s, s.post(f"{web.base}/api/v1/builders/slow/builds/1/stop") as r:
                assert r.status == 200
        assert errors == []


async def test_the_stream_resumes_after_the_coordinator_restarts(cluster: Cluster) -> None:
    async with started(cluster) as web:
        errors: list[str] = []
        async with browser_page(web, errors) as page:
            await page.goto(web.base + "/")
            await page.evaluate("window.notReloaded = true")
            await page.locator("#conn", has_text="live").wait_for()
            await web.coord.restart()
            await force(web, "bad")
            await page.locator('.cell.r-failure[data-builder="bad"]').wait_for()
            await page.locator("#conn", has_text="live").wait_for()
            assert await page.evaluate("window.notReloaded") is True
        # The browser logs the refused connections while the coordinator is down; nothing else.
        assert [e for e in errors if "ERR_CONNECTION_REFUSED" not in e] == []
