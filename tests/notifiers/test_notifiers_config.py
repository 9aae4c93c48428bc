"""Notifiers in a configuration file: importable from coordinator.config, validated with the
file and line of each problem, and a Buildbot-style dict's `services` / `buildbotURL`."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator.config.loader import ConfigError, load_config

HEAD = """from coordinator.config import *

workers = [Worker("w1", "s")]
builders = [Builder("b", workers=["w1"], steps=[ShellCommand(command=["true"])])]
"""


def test_valid_notifiers_load(tmp_path: Path) -> None:
    path = tmp_path / "master.py"
    path.write_text(HEAD + """
config = MasterConfig(
    workers=workers, builders=builders, url="https://ci.example.org/",
    notifiers=[
        MailNotifier("ci@example.org", mode=("failing", "problem"), lookup="example.org"),
        HttpStatusPush("http://127.0.0.1:9/hook", secret="k"),
    ],
)
""")
    cfg = load_config(path)
    assert [type(n).__name__ for n in cfg.notifiers] == ["MailNotifier", "HttpStatusPush"]
    assert cfg.url == "https://ci.example.org/"


def test_problems_are_reported_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "master.py"
    path.write_text(HEAD + """
config = MasterConfig(
    workers=workers, builders=builders,
    notifiers=[
        MailNotifier("ci@example.org", mode="sometimes"),
        MailNotifier("ci@example.org", builders=["nope"]),
        HttpStatusPush("nowhere"),
        "a string",
    ],
)
""")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    lines = [str(p) for p in info.value.problems]
    shown = str(path)
    assert f"{shown}:9: notifier 'MailNotifier': unknown mode 'sometimes'" in lines[0]
    assert any(line.startswith(f"{shown}:10: notifier 'MailNotifier' is defined twice") for line in lines)
    assert any(line.startswith(f"{shown}:10: notifier 'MailNotifier' names unknown builder 'nope'")
               for line in lines)
    assert any(line.startswith(f"{shown}:11: notifier 'HttpStatusPush:nowhere': url must be")
               for line in lines)
    assert any("notifiers must contain MailNotifier(...) or HttpStatusPush(...) objects" in line
               for line in lines)


def test_buildmaster_config_dict_takes_services_and_buildbot_url(tmp_path: Path) -> None:
    path = tmp_path / "master.py"
    path.write_text(HEAD + """
BuildmasterConfig = {
    "workers": workers, "builders": builders, "schedulers": [],
    "services": [MailNotifier("ci@example.org")], "buildbotURL": "http://ci/",
}
""")
    cfg = load_config(path)
    assert len(cfg.notifiers) == 1 and cfg.url == "http://ci/"
