"""`python -m bench [--scenario NAME ...] [--quick] [--buildbot VENV_PYTHON]`."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
from pathlib import Path

from bench import buildbot_scenarios  # stdlib only: never needs Buildbot itself
from bench.metrics import SCENARIOS, ScenarioResult
from bench.report import print_report
from bench.scenarios import Options, run_scenario


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Gantry's benchmark harness: latency, throughput, log streaming, idle workers.",
    )
    p.add_argument("--scenario", action="append", choices=SCENARIOS, metavar="NAME",
                   help=f"scenario to run (repeatable; default all: {', '.join(SCENARIOS)})")
    p.add_argument("--quick", action="store_true", help="smaller counts, for a smoke run")
    p.add_argument("--buildbot", metavar="PYTHON",
                   help="python of a venv with buildbot and buildbot-worker: also measure Buildbot")
    p.add_argument("--keep", action="store_true", help="keep the temporary directories (logs, databases)")
    p.add_argument("--profile", metavar="DIR", type=Path,
                   help="record the coordinator with py-spy (pip install py-spy) into DIR/<scenario>.coordinator.txt")
    p.add_argument("--plain", action="store_true", help="plain-text table even if rich is installed")
    p.add_argument("-v", "--verbose", action="store_true", help="progress on stderr")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    names = args.scenario or SCENARIOS
    names = [n for n in SCENARIOS if n in names]  # canonical order, no duplicates
    opts = Options.make(args.quick, keep=args.keep, verbose=args.verbose, profile_dir=args.profile)

    bb_results: dict[str, ScenarioResult] | None = None
    bb_status = ""
    if args.buildbot:
        usable, bb_status = buildbot_scenarios.availability(args.buildbot)
        print(f"[bench] {bb_status}", file=sys.stderr, flush=True)
        if usable:
            bb_results = {}

    load_before = os.getloadavg()[0]
    results: list[ScenarioResult] = []
    for name in names:  # each scenario: Gantry, then Buildbot, back to back (similar machine load)
        print(f"[bench] gantry {name} ...", file=sys.stderr, flush=True)
        res = asyncio.run(run_scenario(name, opts))
        _progress("gantry", res)
        results.append(res)
        if bb_results is not None:
            print(f"[bench] buildbot {name} ...", file=sys.stderr, flush=True)
            bb = bb_results[name] = buildbot_scenarios.run_one(args.buildbot, name, opts)
            _progress("buildbot", bb)

    machine = (
        f"machine: {platform.node()}, {os.cpu_count()} CPU(s) {_cpu_model()}, Python {platform.python_version()}, "
        f"load average {load_before:.2f} before / {os.getloadavg()[0]:.2f} after (other load makes numbers noisy)"
    )
    if args.quick:
        machine += "; QUICK run: smaller counts, targets apply to the full run"
    print_report(results, bb_results, bb_status, plain=args.plain, header_notes=[machine])
    return 1 if any(r.error for r in results) else 0


def _progress(system: str, res: ScenarioResult) -> None:
    status = f"error: {res.error}" if res.error else "done"
    print(f"[bench] {system} {res.scenario} {status} ({res.seconds:.1f} s)", file=sys.stderr, flush=True)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return "(" + line.split(":", 1)[1].strip() + ")"
    except OSError:
        pass
    return ""


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
