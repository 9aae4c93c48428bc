"""`gantry janitor` against a real coordinator: the dry run counts, the sweep deletes the builds
past their horizon (artifact files included), and a bad Retention rule is a FILE:LINE error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.harness import SUCCESS, Cluster, config_source, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

CONFIG = """
config = MasterConfig(
    workers=[Worker("w1", "secret1")],
    builders=[
        Builder("old", workers=["w1"], steps=[
            ShellCommand(name="make", command="echo data > out.txt"),
            FileUpload(workersrc="out.txt", name="out.txt"),
        ]),
        Builder("kept", workers=["w1"], steps=[ShellCommand(name="x", command=["true"])]),
    ],
    schedulers=[ForceScheduler("force", builders=["old", "kept"])],
    # "old" keeps its builds for a millisecond: they are past it by the time we ask.
    retention=[Retention(buildHorizon=0.001, builders=["old"]), Retention(logHorizon=timedelta(days=30))],
)
"""


async def test_janitor_dry_run_then_sweep(cluster: Cluster) -> None:
    coord = await cluster.start_coordinator("from datetime import timedelta\n" + CONFIG)
    await cluster.start_worker(coord, "w1", "secret1")
    rec = await coord.record(since=0)
    for builder in ("old", "kept"):
        forced = await coord.force(builder)
        assert (await rec.wait_kind("buildset.finished", buildset_id=forced.buildset_id)).result == SUCCESS
    artifact = coord.data_dir / "artifacts" / "old" / "1" / "out.txt"
    assert artifact.exists()
    at = ("--coordinator", coord.address)

    code, out, err = await run_cli("janitor", "--dry-run", *at)
    assert code == 0, err
    assert "old: would delete 1 builds" in out.decode()
    assert len(await coord.list_builds("old")) == 1

    code, out, err = await run_cli("janitor", "--json", *at)
    assert code == 0, err
    report = json.loads(out)
    assert {"builder": "old", "kind": "builds", "count": 1} in report["counts"]
    assert report["reclaimed"].startswith("SQLite: ")
    assert await coord.list_builds("old") == []
    assert [b.number for b in await coord.list_builds("kept")] == [1]
    assert not artifact.exists()
    assert "janitor: old: deleted 1 builds" in coord.process.output()  # type: ignore[union-attr]


async def test_a_bad_retention_rule_names_its_line(cluster: Cluster, tmp_path: Path) -> None:
    path = tmp_path / "master.py"
    path.write_text(
        config_source("""
config = MasterConfig(
    workers=[Worker("w1", "s")],
    builders=[Builder("b", workers=["w1"], steps=[ShellCommand(command=["true"])])],
    retention=[
        Retention(logHorizon=-5),
        Retention(buildHorizon=60, builders=["nope"]),
    ],
)
""")
    )
    code, _, err = await run_cli("checkconfig", str(path))
    assert code == 1
    text = err.decode()
    assert f"{path}:7: Retention: the logs horizon must be positive, not -5s" in text, text
    assert f"{path}:8: Retention names builder 'nope', which is not configured" in text, text
