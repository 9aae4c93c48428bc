"""Test results as data end to end: Test steps on a real worker record every JUnit test case, and
`gantry tests` reports the failing, flaky and slowest tests and one test's history."""

from __future__ import annotations

import json

import aiohttp
import pytest

from tests.e2e.harness import FAILURE, SUCCESS, Cluster, describe_events, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

# Build n writes a report where s.flaky fails on even builds, s.broken fails from build 3 on, and
# s.slow takes n seconds. Builds 1 and 2 test revision rev-a (got_revision), build 3 rev-b: s.flaky
# changed outcome on one revision (flaky), s.broken only with a new revision (broken, not flaky).
REPORT = (
    "n=%(prop:buildnumber)s; "
    "flaky=$([ $((n %% 2)) = 0 ] && echo '<failure message=\"flaked\"/>'); "
    "broken=$([ $n -ge 3 ] && echo '<failure message=\"broke in build 3\">trace</failure>'); "
    "mkdir -p r && printf '<testsuite>"
    "<testcase classname=\"s\" name=\"flaky\" time=\"0.1\">%%s</testcase>"
    "<testcase classname=\"s\" name=\"broken\" time=\"0.2\">%%s</testcase>"
    "<testcase classname=\"s\" name=\"slow\" time=\"%%s\"/></testsuite>' \"$flaky\" \"$broken\" \"$n\" > r/junit.xml"
)

CONFIG = f"""
config = MasterConfig(
    workers=[Worker("w1", "secret1")],
    builders=[
        Builder("suite", workers=["w1"], steps=[
            SetPropertyFromCommand(name="rev", property="got_revision", command=Interpolate(
                "echo rev-$([ %(prop:buildnumber)s -ge 3 ] && echo b || echo a)")),
            Test(command=Interpolate({REPORT!r}), junit="r/junit.xml"),
        ]),
    ],
    schedulers=[ForceScheduler("force", builders=["suite"])],
)
"""


async def test_gantry_tests_reports_failing_flaky_and_slowest(cluster: Cluster) -> None:
    coord = await cluster.start_coordinator(CONFIG, extra_args=["--http", "127.0.0.1:0"])
    assert coord.process is not None
    http = await coord.process.wait_line(r"Gantry coordinator HTTP on (http://\S+:\d+)/")
    await cluster.start_worker(coord, "w1", "secret1")
    rec = await coord.record()
    for expected in (SUCCESS, FAILURE, FAILURE):
        forced = await coord.force("suite")
        done = await rec.wait_kind("buildset.finished", buildset_id=forced.buildset_id)
        assert done.result == expected, describe_events(rec.events) + cluster.logs()
    await rec.aclose()
    at = ("--coordinator", coord.address)

    code, out, err = await run_cli("tests", "suite", "--json", *at)
    assert code == 0, err
    failing = json.loads(out)
    assert failing["builds"] == 3
    assert [(t["latest"]["name"], t["newly_failing"], t["failing_since"], t["latest"]["message"])
            for t in failing["tests"]] == [("s.broken", True, 3, "broke in build 3")]

    code, out, err = await run_cli("tests", "suite", "--flaky", "--json", *at)
    assert code == 0, err
    [flaky] = json.loads(out)["tests"]
    assert (flaky["latest"]["name"], flaky["flips"], flaky["failures"], flaky["runs"]) == ("s.flaky", 1, 1, 3)
    assert flaky["latest"]["revision"] == "rev-b"

    code, out, err = await run_cli("tests", "suite", "--slowest", "--limit", "1", "--json", *at)
    assert code == 0, err
    [slow] = json.loads(out)["tests"]
    assert (slow["latest"]["name"], slow["latest"]["duration"], slow["mean_duration"]) == ("s.slow", 3.0, 1.5)

    code, out, err = await run_cli("tests", "suite", "--test", "s.flaky", "--json", *at)
    assert code == 0, err
    assert [(r["build_number"], r["outcome"]) for r in json.loads(out)["runs"]] == [
        (3, "passed"), (2, "failed"), (1, "passed")
    ]

    # The tables a person reads (piped: no colour), and the refusals.
    code, out, err = await run_cli("tests", "suite", "--slowest", *at)
    assert code == 0, err
    assert b"s.slow" in out and b"+100%" in out
    code, out, err = await run_cli("tests", "suite", *at)
    assert code == 0 and b"#3 (new)" in out and b"broke in build 3" in out, err
    code, out, err = await run_cli("tests", "nope", *at)
    assert code != 0 and b"no builder named 'nope'" in err, (out, err)

    # The same data over the HTTP API, and as the builder page's Tests section (its JSON twin).
    async with aiohttp.ClientSession(base_url=http.group(1)) as s:
        async with s.get("/api/v1/builders/suite/tests", params={"view": "TEST_VIEW_FLAKY"}) as resp:
            assert resp.status == 200, await resp.text()
            assert [t["latest"]["name"] for t in (await resp.json())["tests"]] == ["s.flaky"]
        async with s.get("/api/v1/builders/suite/tests", params={"view": "TEST_VIEW_HISTORY"}) as resp:
            assert resp.status == 400 and "name" in (await resp.json())["error"]
        async with s.get("/builders/suite", params={"format": "json", "test": "s.flaky"}) as resp:
            assert resp.status == 200, await resp.text()
            tests = (await resp.json())["tests"]
        assert [t["latest"]["name"] for t in tests["failing"]] == ["s.broken"]
        assert tests["slowest"][0]["latest"]["name"] == "s.slow"
        assert [r["build_number"] for r in tests["history"]] == [3, 2, 1]
        async with s.get("/builders/suite") as resp:
            page = await resp.text()
        assert resp.status == 200 and "broke in build 3" in page and 'href="/builders/suite?test=s.flaky#tests"' in page
