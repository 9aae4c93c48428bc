"""Regenerate the web UI screenshots of the manual (docs/images/*.png):

    python docs/screenshots.py

Starts a real coordinator and worker in a temporary directory, runs a few builds (passing,
failing, a matrix, one still running; a worker paused), and photographs home, waterfall, a
build page, the log viewer, a builder page with its Tests, workers and grid with Debian's chromium
(/usr/bin/chromium) through Playwright, in light and dark themes, and the first three 640 pixels
wide (about 80 columns).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

import aiohttp
from playwright.async_api import async_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.harness import Cluster, run_cli  # noqa: E402
from tests.e2e.web import sse_events, started  # noqa: E402

OUT = ROOT / "docs" / "images"
CONFIG = """
config = MasterConfig(
    workers=[Worker("w1", "secret1", max_builds=8), Worker("w2", "secret2")],
    builders=[
        Builder("linux-gcc", workers=["w1"], collapseRequests=False, tags=["linux"], steps=[
            ShellCommand(name="configure", command=["echo", "checking for gcc... yes"]),
            ShellCommand(name="compile", command=["sh", "-c", "for i in 1 2 3; do echo cc -c file$i.c; done"]),
            ShellCommand(name="test", command=["sh", "-c",
                "printf '\\\\033[32mPASS\\\\033[0m test_a\\\\n\\\\033[32mPASS\\\\033[0m test_b\\\\n'"]),
        ]),
        Builder("linux-clang", workers=["w1"], collapseRequests=False, tags=["linux"], steps=[
            ShellCommand(name="compile", command=["echo", "clang -c main.c"]),
            Test(name="test", junit="r/junit.xml", command=["sh", "-c",
                '''mkdir -p r && printf "<testsuite><testcase classname='parser' name='test_a' time='0.4'/>'''
                '''<testcase classname='parser' name='test_b' time='1.2'><failure message='expected 3, got 4'/>'''
                '''</testcase></testsuite>" > r/junit.xml; '''
                "printf 'test_a ... ok\\\\n\\\\033[31mFAIL\\\\033[0m test_b\\\\nerror: 1 test failed\\\\n'; exit 1"]),
        ]),
        Builder("test", workers=["w1"], collapseRequests=False, tags=["linux"],
                matrix=Matrix(python=["3.11", "3.12"], os=["linux", "arm"]), steps=[
            ShellCommand(name="tox", command=Interpolate("echo tox -e py%(prop:python)s")),
        ]),
        Builder("docs", workers=["w1"], collapseRequests=False, tags=["docs"], steps=[
            ShellCommand(name="build", command=["echo", "mkdocs build"]),
        ]),
        Builder("macos", workers=["w2"], collapseRequests=False, tags=["mac"], steps=[
            ShellCommand(name="compile", command=["echo", "xcodebuild"]),
        ]),
        Builder("integration", workers=["w1"], collapseRequests=False, tags=["linux"], steps=[
            ShellCommand(name="setup", command=["echo", "starting services"]),
            ShellCommand(name="suite", command=["sh", "-c",
                "i=0; while [ $i -lt 3000 ]; do echo \\"[$i] \\\\033[36mINFO\\\\033[0m request $i ok\\"; "
                "i=$((i+1)); sleep 0.02; done"]),
        ]),
    ],
    schedulers=[ForceScheduler("force", ["linux-gcc", "linux-clang", "docs", "macos", "integration", "test"],
        properties=[StringParameter("ticket", default="GAN-1", regex=r"^[A-Z]+-[0-9]+$"),
                    IntParameter("jobs", default=4), BooleanParameter("clean"),
                    ChoiceStringParameter("flavour", choices=["debug", "release"], default="release")])],
)
"""


async def force(session: aiohttp.ClientSession, base: str, builder: str) -> None:
    async with session.post(f"{base}/api/v1/builders/{builder}/force", json={"reason": "nightly"}) as r:
        assert r.status == 200, await r.text()


async def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp))
        try:
            async with started(cluster, CONFIG) as web, aiohttp.ClientSession() as s:
                for round_ in range(1, 4):  # one round at a time: no two builds of a builder overlap
                    for b in ("linux-gcc", "linux-clang", "docs", "test"):
                        await force(s, web.base, b)
                    finished = 0  # since=0 replays the earlier rounds too
                    async for _, _, e in sse_events(s, f"{web.base}/api/v1/events?since=0"):
                        finished += e["kind"] == "build.finished"
                        if finished == round_ * (3 + 4):  # the matrix has four combinations
                            break
                code, _, err = await run_cli("worker", "pause", "w2", "--reason", "kernel upgrade",
                                             "--coordinator", web.coord.address)
                assert code == 0, err
                await force(s, web.base, "integration")
                async for _, _, e in sse_events(s, f"{web.base}/api/v1/events?since=0&builders=integration"):
                    if e["kind"] == "step.started" and e["step_name"] == "suite":
                        break
                await asyncio.sleep(2)  # let the running log grow a little for the picture
                await shoot(web.base)
        finally:
            await cluster.aclose()


async def shoot(base: str) -> None:
    pages = [("home", "/"), ("waterfall", "/waterfall"), ("build", "/builders/linux-clang/builds/3"),
             ("log", "/builders/integration/builds/1/steps/suite/logs/stdio"),
             ("builder", "/builders/linux-clang"), ("workers", "/workers"), ("grid", "/grid")]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path="/usr/bin/chromium")
        for scheme in ("light", "dark"):
            ctx = await browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme=scheme)
            page = await ctx.new_page()
            for name, path in pages:
                await page.goto(base + path)
                if name == "log":  # the top of the page: following, the window scrolls on
                    await page.wait_for_selector("#log[data-ready]")
                    await page.get_by_label("Follow").uncheck()
                    await page.evaluate("window.scrollTo(0, 0)")
                await page.screenshot(path=str(OUT / f"{name}-{scheme}.png"))
            if scheme == "light":  # the force dialog, with a refused value
                await page.goto(base + "/builders/linux-gcc")
                await page.get_by_role("button", name="Force a build…").click()
                await page.locator("#force-dialog").get_by_label("ticket").fill("not a ticket")
                await page.locator("#force-dialog").get_by_role("button", name="Start build").click()
                await page.locator("#force-dialog .error").wait_for(state="visible")
                await page.screenshot(path=str(OUT / "force-light.png"))
            await ctx.close()
        # About 80 columns of text: the stacked layout a phone or a narrow window gets.
        ctx = await browser.new_context(viewport={"width": 640, "height": 900}, color_scheme="dark")
        page = await ctx.new_page()
        for name, path in pages[:3]:
            await page.goto(base + path)
            await page.screenshot(path=str(OUT / f"{name}-narrow.png"))
        await ctx.close()
        await browser.close()


if __name__ == "__main__":
    asyncio.run(main())
