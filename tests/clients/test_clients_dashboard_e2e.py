"""`gantry watch` end to end on a pseudo-terminal: the dashboard shows a forced build running and
then among the recent results, and Ctrl-C leaves quietly with exit code 0; piped, the same
command still prints one line per event."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.clients.test_clients_up_e2e import (
    ROOT,
    env,
    gantry,
    needs_servers,
    start_up,
    stop_up,
)
from tests.e2e.harness import WITH_DEFAULT_SIGINT

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Terminal:
    """A child process on a 40x120 pseudo-terminal, with everything it wrote (ANSI stripped)."""

    def __init__(self, argv: list[str]) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        child_env = dict(env(), TERM="xterm-256color")
        child_env.pop("COLUMNS", None)
        self.proc = subprocess.Popen(
            [*WITH_DEFAULT_SIGINT, *argv], stdin=slave, stdout=slave, stderr=slave, env=child_env, cwd=ROOT
        )
        os.close(slave)
        self.master = master
        self.raw = b""

    @property
    def text(self) -> str:
        return _ANSI.sub("", self.raw.decode(errors="replace"))

    def read_until(self, predicate: Callable[[str], bool], timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.text):
                return True
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    self.raw += os.read(self.master, 65536)
                except OSError:  # the child closed the terminal
                    return predicate(self.text)
        return predicate(self.text)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        os.close(self.master)


@needs_servers
def test_watch_shows_a_live_dashboard_on_a_terminal(tmp_path: Path, up_port: int) -> None:
    listen = f"127.0.0.1:{up_port}"
    up, output = start_up(tmp_path / "data", listen)
    term = Terminal([sys.executable, "-m", "clients", "watch", "--coordinator", listen])
    try:
        assert "Press Ctrl-C" in output, output
        # The snapshot: the sample build of `gantry up` among the recent results, the worker.
        assert term.read_until(lambda t: "sample/1" in t and "local-worker" in t), term.text
        assert "Running (0)" in term.text and "Recent" in term.text and "Workers" in term.text
        forced = gantry("force", "sample", "--coordinator", listen)
        assert forced.returncode == 0, forced.stderr
        # It runs (with its step), then finishes among the recent results.
        assert term.read_until(lambda t: "Running (1)" in t and "sample/2" in t), term.text
        assert term.read_until(
            lambda t: re.search(r"✔ sample/2\s+success", t) is not None
        ), term.text
        term.proc.send_signal(signal.SIGINT)
        assert term.proc.wait(30) == 0
        term.read_until(lambda t: False, timeout=0.5)
        assert "Traceback" not in term.text and "KeyboardInterrupt" not in term.text
        # Piped, `watch` prints one line per event (as `--lines` does).
        piped = subprocess.Popen(
            [*WITH_DEFAULT_SIGINT, sys.executable, "-m", "clients", "watch", "--since", "0", "--coordinator", listen],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(), cwd=ROOT,
        )
        assert piped.stdout is not None
        seen = []
        for line in piped.stdout:
            seen.append(line)
            if re.search(r"build\.finished\s+sample/2 success", line):
                break
        piped.send_signal(signal.SIGINT)
        _, err = piped.communicate(timeout=30)
        assert piped.returncode == 0, err
        assert any(re.match(r"#\d+ \S+ build\.started\s+sample/1 on local-worker", x) for x in seen)
    finally:
        term.close()
        code, rest = stop_up(up)
        assert code == 0, rest
