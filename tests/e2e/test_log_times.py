"""Per-line log times end to end: a real worker stamps when it read each line, the coordinator
stores the times with the log, and the HTTP API, the browser's log viewer (live tail and
range-loaded page) and `gantry log --timestamps` show them.

The step prints three lines with pauses between them that end on the test's signal, given only
once the line before is stored: so each line was read strictly later than the one before. No
timing thresholds: the test asserts order and that the marks differ."""

from __future__ import annotations

import asyncio
import base64
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.harness import TIMEOUT, Cluster, run_cli
from tests.e2e.test_web_ui import CHROMIUM, browser_page, force, wait_event
from tests.e2e.web import Web, sse_events, started

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]
LOG = "/api/v1/builders/paced/builds/1/steps/paced/logs/stdio"


def config(ready: Path, gate1: Path, gate2: Path) -> str:
    # `echo > ready` (a FIFO) tells the test the command runs, so its log exists; each gate
    # ends a pause.
    command = (f"echo first; echo > {ready}; while [ ! -e {gate1} ]; do sleep 0.05; done; echo second; "
               f"while [ ! -e {gate2} ]; do sleep 0.05; done; echo third")
    return f"""
config = MasterConfig(
    workers=[Worker("w1", "secret1")],
    builders=[Builder("paced", workers=["w1"], steps=[ShellCommand(name="paced", command={command!r})])],
    schedulers=[ForceScheduler("force", ["paced"], properties=[StringParameter("ticket")])],
)
"""


def line_times(data: bytes, marks: list[list[int]]) -> dict[str, int]:
    """Each line's time: that of the last mark at or before its first byte."""
    out: dict[str, int] = {}
    pos = 0
    for line in data.split(b"\n")[:-1]:
        before = [ms for offset, ms in marks if offset <= pos]
        if before:
            out[line.decode()] = before[-1]
        pos += len(line) + 1
    return out


async def follow_until(session: aiohttp.ClientSession, web: Web, text: str, offset: int) -> tuple[int, list[Any]]:
    """Follow the log from `offset` until `text` is stored; the offset reached and the marks seen."""
    got, marks = "", []
    async for _, name, doc in sse_events(session, f"{web.base}{LOG}/follow?offset={offset}"):
        if name != "message":
            break
        got += doc["text"]
        marks += doc["times"]
        offset = doc["offset"] + len(doc["text"].encode())
        if text in got:
            return offset, marks
    raise AssertionError(f"the log ended without {text!r}: {got!r}")


async def test_lines_printed_after_pauses_have_later_times_in_api_browser_and_cli(
    cluster: Cluster, tmp_path: Path
) -> None:
    ready, gate1, gate2 = tmp_path / "ready", tmp_path / "gate1", tmp_path / "gate2"
    os.mkfifo(ready)
    with_browser = CHROMIUM.exists()
    async with started(cluster, config(ready, gate1, gate2)) as web, aiohttp.ClientSession() as s:
        await force(web, "paced")
        await asyncio.wait_for(asyncio.to_thread(ready.read_bytes), TIMEOUT)  # the command runs
        offset, live_marks = await follow_until(s, web, "first\n", 0)
        errors: list[str] = []
        async with browser_page(web, errors) if with_browser else _nothing() as page:
            if page is not None:  # the live tail: lines arriving while the page is open get times
                await page.goto(web.base + "/builders/paced/builds/1/steps/paced/logs/stdio")
                await page.wait_for_selector("#log[data-ready]")
                await page.locator("#log .l", has_text=re.compile(r"^first\s*$")).wait_for()
            gate1.touch()
            offset, more = await follow_until(s, web, "second\n", offset)
            live_marks += more
            gate2.touch()
            await wait_event(web, "build.finished", "paced")
            if page is not None:
                await page.locator("#log .l", has_text=re.compile(r"^third\s*$")).wait_for()
                live = await browser_times(page)
                await page.reload()  # the complete log, loaded by range
                await page.wait_for_selector("#log[data-ready]")
                loaded = await browser_times(page)
                assert live["first"] < live["second"] < live["third"], live
                assert loaded == live
                # Shown as clock times by default; "since step start" is one choice away.
                stamp = page.locator("#log .l", has_text=re.compile(r"^second\s*$")).locator(".ts")
                assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3}", await stamp.get_attribute("data-c") or "")
                await page.select_option("#log-times", "elapsed")
                assert "t-elapsed" in (await page.get_attribute("#log", "class") or "")
                assert re.fullmatch(r"\+\d+:\d\d\.\d{3}", await stamp.get_attribute("data-e") or "")
        assert errors == []

        # The HTTP API: the raw bytes and their marks, also through the transcoded ReadLog.
        async with s.get(web.base + LOG + "/raw") as resp:
            data = await resp.read()
        async with s.get(web.base + LOG + "/times") as resp:
            assert resp.status == 200
            marks = (await resp.json())["times"]
        times = line_times(data, marks)
        assert times["first"] < times["second"] < times["third"], (data, marks)
        assert [m[0] for m in marks] == sorted({m[0] for m in marks})
        async with s.get(web.base + LOG) as resp:
            doc = await resp.json()
        assert base64.b64decode(doc["data"]) == data
        assert [[t["offset"], t["unix_ms"]] for t in doc["times"]] == marks
        # What the live follow said agrees with what was stored.
        assert line_times(data, live_marks)["second"] == times["second"]

        # `gantry log --timestamps`: RFC 3339 prefixes, in order.
        code, out, err = await run_cli("log", "paced", "1", "paced", "--channel", "stdout", "--timestamps",
                                       "--coordinator", web.coord.address)
        assert code == 0, err.decode()
        stamped = dict(
            (text, datetime.fromisoformat(when)) for when, text in
            (line.split(" ", 1) for line in out.decode().splitlines())
        )
        assert list(stamped) == ["first", "second", "third"]
        assert stamped["first"] < stamped["second"] < stamped["third"]
        assert round(stamped["second"].timestamp() * 1000) == times["second"]


async def browser_times(page: Any) -> dict[str, str]:
    """Each line's full time (the title of its time cell), by the line's text, once the three
    lines have theirs (the column fills in after the text)."""
    await page.wait_for_function("""() => ['first', 'second', 'third'].every((t) =>
        Array.from(document.querySelectorAll('#log .l'))
            .some((l) => l.textContent.trim() === t && l.querySelector('.ts')))""")
    return dict(await page.evaluate(
        """() => Array.from(document.querySelectorAll('#log .l')).filter((l) => l.querySelector('.ts'))
              .map((l) => [l.textContent.trim(), l.querySelector('.ts').title])"""))


class _nothing:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None
