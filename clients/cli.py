"""The `gantry` command line: client commands, `gantry up`, and the delegated
`gantry coordinator|checkconfig|worker` (loaded by name, so this package never imports them).

Expected failures print one line, `gantry: error: ...`, and exit 1; usage errors exit 2.
"""

from __future__ import annotations

import os

# grpc's C core logs at INFO to stderr by default ("Got goaway", fork notes): a CLI must not.
# This has to happen before grpc is first imported.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
# grpc's fork handlers off unless asked for (why: coordinator/__main__.py), before grpc is imported.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable, Coroutine  # noqa: E402
from typing import Any  # noqa: E402

from clients.client import DEFAULT_ADDRESS  # noqa: E402
from clients.errors import GantryError  # noqa: E402

ENV_COORDINATOR = "GANTRY_COORDINATOR"
LOG_CHANNELS = ("all", "stdout", "stderr", "header")

# Subcommands run by other packages: word -> (module, function, what is missing if absent, help).
DELEGATED: dict[str, tuple[str, str, str, str]] = {
    "coordinator": ("coordinator.cli", "main", "the coordinator", "run the coordinator"),
    "checkconfig": ("coordinator.cli", "checkconfig_main", "the coordinator", "check a configuration file"),
    "worker": ("worker_agent.cli", "main", "the worker agent", "run a worker agent"),
}

Handler = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]


UP_ADDRESS_FILE = os.path.join("gantry-data", "coordinator.addr")  # written by `gantry up`'s coordinator


def default_coordinator() -> str:
    """$GANTRY_COORDINATOR, else `coordinator` in the client config file, else the address a
    `gantry up` started from this directory wrote (its port may not be the default), else the
    default address."""
    from clients.connection import read_config_file
    from clients.errors import LocalError

    from_env = os.environ.get(ENV_COORDINATOR)
    if from_env:
        return from_env
    try:
        in_file = str(read_config_file().get("coordinator") or "")
    except LocalError:  # reported when a command connects
        in_file = ""
    if in_file:
        return in_file
    try:
        with open(UP_ADDRESS_FILE, encoding="utf-8") as f:
            written = f.read().strip()
    except (OSError, UnicodeDecodeError):
        written = ""
    return written or DEFAULT_ADDRESS


def parse_property(text: str) -> tuple[str, object]:
    """`k=v`: v is JSON if it parses as JSON (3, true, "x", [1]), else the plain string."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        value: object = json.loads(raw, parse_constant=_reject_constant)
    except ValueError:
        value = raw
    return name, value


def parse_codebase(text: str) -> tuple[str, str, str]:
    """`CODEBASE:FIELD=VALUE`, FIELD one of branch, revision, repository, project."""
    codebase, sep, rest = text.partition(":")
    field, eq, value = rest.partition("=")
    if not sep or not eq or field not in CODEBASE_FIELDS:
        raise argparse.ArgumentTypeError(
            f"expected CODEBASE:FIELD=VALUE with FIELD one of {', '.join(CODEBASE_FIELDS)}, got {text!r}"
        )
    return codebase, field, value


CODEBASE_FIELDS = ("branch", "revision", "repository", "project")


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")  # NaN/Infinity stay plain strings


def parse_unix_time(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a UNIX timestamp, got {text!r}") from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from clients import commands, janitor, reconfig, try_job, worker_admin

    parser = argparse.ArgumentParser(
        prog="gantry", description="Gantry: a gRPC-native build coordinator in the tradition of Buildbot."
    )
    parser.add_argument("--version", action="version", version=f"gantry {_version()}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--coordinator", metavar="HOST:PORT", default=default_coordinator(),
        help=f"coordinator address (default: ${ENV_COORDINATOR}, else the address in ./{UP_ADDRESS_FILE} "
        f"written by `gantry up`, else {DEFAULT_ADDRESS})",
    )
    common.add_argument("--json", action="store_true", help="machine-readable JSON output")
    sec = common.add_argument_group("connection security (also $GANTRY_TOKEN, $GANTRY_TLS_CA…, "
                                    "~/.config/gantry/config.toml)")
    sec.add_argument("--token", default="", help="API token (`gantry token create`)")
    sec.add_argument("--tls-ca", default="", metavar="FILE", help="CA that signed the coordinator's certificate")
    sec.add_argument("--tls", action="store_true", help="use TLS, trusting the system's CAs")
    sec.add_argument("--tls-cert", default="", metavar="FILE", help="client certificate (mutual TLS)")
    sec.add_argument("--tls-key", default="", metavar="FILE", help="its private key")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, handler: Handler, help_: str, **kw: Any) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_, description=help_, **kw)
        p.set_defaults(handler=handler)
        return p

    up = sub.add_parser("up", help="start a local coordinator and worker and run a sample build",
                        description="Start a local coordinator and worker, run a sample build, "
                                    "and keep serving until Ctrl-C.")
    up.add_argument("--data-dir", default="./gantry-data", metavar="DIR",
                    help="where configuration, database and logs live (default: ./gantry-data)")
    up.add_argument("--listen", default="127.0.0.1:9989", metavar="HOST:PORT",
                    help="address the coordinator listens on (default: 127.0.0.1:9989)")
    up.set_defaults(handler=commands.cmd_up)
    for word, (_, _, _, text) in DELEGATED.items():
        if word == "worker":
            worker_admin.add_parser(sub, common, text)
            continue
        sub.add_parser(word, add_help=False, help=f"{text} (see `gantry {word} --help`)")

    p = command("sendchange", commands.cmd_sendchange, "submit a source change (e.g. from a VCS hook)")
    p.add_argument("--author", required=True)
    p.add_argument("--repository", required=True)
    p.add_argument("--branch", required=True)
    p.add_argument("--revision", required=True)
    for opt in ("project", "category", "committer", "codebase", "revlink"):
        p.add_argument(f"--{opt}", default="")
    p.add_argument("--comments", default="", metavar="TEXT")
    p.add_argument("--comments-file", metavar="FILE", help="read the comments from FILE ('-': stdin)")
    p.add_argument("--when", type=parse_unix_time, metavar="UNIX_TS")
    p.add_argument("--property", action="append", type=parse_property, default=[], metavar="K=V")
    p.add_argument("--idempotency-key", default="", metavar="KEY",
                   help="makes a retried submission harmless")
    p.add_argument("files", nargs="*", metavar="FILE", help="paths changed by the commit")

    p = command("force", commands.cmd_force, "force a build on a builder")
    p.add_argument("builder")
    for opt in ("branch", "revision", "repository", "reason", "owner", "project", "scheduler"):
        p.add_argument(f"--{opt}", default="")
    p.add_argument("--property", action="append", type=parse_property, default=[], metavar="K=V")
    p.add_argument("--priority", type=int, default=None, metavar="N",
                   help="request priority, higher first (default: the ForceScheduler's)")
    p.add_argument("--codebase", action="append", type=parse_codebase, default=[],
                   metavar="CODEBASE:FIELD=VALUE",
                   help="branch/revision/repository/project of one codebase, e.g. lib:branch=dev")
    p.add_argument("--wait", action="store_true",
                   help="follow the build; exit 0 on success or warnings, 1 otherwise")
    p.add_argument("--parameters", action="store_true",
                   help="list the parameters and codebases the builder's ForceScheduler takes, and exit")

    try_job.add_parser(command)

    p = command("rebuild", commands.cmd_rebuild,
                "build a build again: same source stamps and properties, same builder")
    p.add_argument("builder")
    p.add_argument("number", type=_positive)
    p.add_argument("--wait", action="store_true",
                   help="follow the new build; exit 0 on success or warnings, 1 otherwise")

    p = command("stop", commands.cmd_stop, "stop a running build")
    p.add_argument("builder")
    p.add_argument("number", type=_positive)
    p.add_argument("--reason", default="")

    p = command("cancel", commands.cmd_cancel,
                "cancel a build request that has not started (`gantry pending` lists them)")
    p.add_argument("request_id", type=_positive)
    p.add_argument("--reason", default="")

    command("builders", commands.cmd_builders, "list the builders")
    p = command("builds", commands.cmd_builds, "list recent builds, newest first")
    p.add_argument("--builder", default="")
    p.add_argument("--limit", type=_positive, default=20)
    p = command("build", commands.cmd_build, "show one build: steps, properties, changes")
    p.add_argument("builder")
    p.add_argument("number", type=_positive)
    p = command("changes", commands.cmd_changes, "list recent changes, newest first")
    p.add_argument("--limit", type=_positive, default=20)
    command("workers", commands.cmd_workers, "list the workers")
    reconfig.add_parser(command)
    janitor.add_parser(command)
    p = command("notifications", commands.cmd_notifications,
                "list notifications (mail, HTTP push) and their delivery state")
    p.add_argument("--state", choices=["pending", "sent", "failed"], default="")
    p.add_argument("--limit", type=_positive, default=20)
    p = command("pending", commands.cmd_pending,
                "list unstarted build requests in start order, and why each is pending")
    p.add_argument("builder", nargs="?", default="", help="only this builder's requests")
    p = command("requests", commands.cmd_requests,
                "list build requests, newest first (collapsed ones show the request that absorbed them)")
    p.add_argument("--builder", default="")
    p.add_argument("--buildset", type=_positive, default=0, metavar="ID")
    p.add_argument("--limit", type=_positive, default=20)

    command("schedulers", commands.cmd_schedulers,
            "list the schedulers: kind, enabled, next fire time, builders")
    p = command("scheduler", commands.cmd_scheduler_set,
                "enable or disable a scheduler at run time (stored; survives a restart)")
    p.add_argument("action", choices=["enable", "disable"])
    p.add_argument("name", help="the scheduler's name (see `gantry schedulers`)")

    p = command("artifacts", commands.cmd_artifacts, "list the files a build stored on the coordinator")
    p.add_argument("builder")
    p.add_argument("number", type=_positive)
    p = command("tests", commands.cmd_tests,
                "test results across a builder's recent builds: failing (default), flaky, slowest")
    p.add_argument("builder")
    views = p.add_mutually_exclusive_group()
    views.add_argument("--failing", dest="view", action="store_const", const="failing",
                       help="tests failing in the latest build, newly failing first (default)")
    views.add_argument("--flaky", dest="view", action="store_const", const="flaky",
                       help="tests that both passed and failed on one revision")
    views.add_argument("--slowest", dest="view", action="store_const", const="slowest",
                       help="the latest build's slowest tests and their trend")
    views.add_argument("--test", metavar="NAME", help="every run of one test (classname.name)")
    p.add_argument("--builds", type=_positive, default=0, metavar="N",
                   help="look at the last N builds with test results (default 20)")
    p.add_argument("--limit", type=_positive, default=0, metavar="N", help="at most N tests (default 50)")
    p = command("download", commands.cmd_download,
                "download a build's artifact (checks its size and sha256)")
    p.add_argument("builder")
    p.add_argument("number", type=_positive)
    p.add_argument("name", help="artifact name (see `gantry artifacts`)")
    p.add_argument("-o", "--output", metavar="PATH", help="file or directory to write (default: ./NAME)")

    p = command("log", commands.cmd_log, "write a step's log to stdout (raw bytes)")
    p.add_argument("builder")
    p.add_argument("number", type=_positive)
    p.add_argument("step", help="step name or number")
    p.add_argument("--log", default="stdio", metavar="NAME")
    p.add_argument("--follow", "-f", action="store_true", help="stream until the log is complete")
    p.add_argument("--channel", choices=LOG_CHANNELS, default="all")
    p.add_argument("--timestamps", "-t", action="store_true",
                   help="prefix each line with when it was printed (RFC 3339, UTC; "
                        "logs stored before Gantry kept times have none)")

    _hook_parser(sub)
    from clients import access

    access.add_parser(sub, common)

    p = command(
        "watch", commands.cmd_watch,
        "a live dashboard of running builds, queue, results and workers until Ctrl-C "
        "(on a terminal; otherwise, or with --lines, one line per event)",
    )
    p.add_argument("--builder", action="append", default=[], help="only this builder (repeatable)")
    p.add_argument("--lines", action="store_true",
                   help="print one line per event instead of the dashboard")
    p.add_argument("--kind", action="append", default=[],
                   help="only this event kind (repeatable; implies --lines)")
    p.add_argument("--since", type=int, default=-1, metavar="EVENT_ID",
                   help="replay events after this id first (0: all history; default: only new; "
                        "implies --lines)")
    return parser


def _hook_parser(sub: Any) -> None:
    from clients import hook

    p = sub.add_parser("hook", help="the git hook that submits pushed commits",
                       description="Install the git hook that submits pushed commits, or send "
                                   "what it spooled while the coordinator was unreachable.")
    hook_sub = p.add_subparsers(dest="hook_command", metavar="COMMAND", required=True)
    inst = hook_sub.add_parser(
        "install", help="install post-receive and post-commit hooks into a repository",
        description="Install post-receive (pushes) and post-commit (local commits) hooks that submit "
                    "each new commit as a change; in a Mercurial repository, a changegroup hook in "
                    ".hg/hgrc.")
    inst.add_argument("--repo", required=True, metavar="PATH", help="the repository (bare or not)")
    inst.add_argument("--coordinator", required=True, metavar="HOST:PORT")
    inst.add_argument("--project", default="")
    inst.add_argument("--category", default="")
    inst.add_argument("--repository", default="", metavar="URL",
                      help="the repository field of the changes (default: the repository's path)")
    inst.add_argument("--revlink", default="", metavar="TEMPLATE",
                      help="link to a revision, e.g. 'https://git.example.org/c/{revision}' (or %%s)")
    inst.add_argument("--token-file", default="", metavar="FILE",
                      help="file whose first line is the token sent with each submission")
    inst.add_argument("--tls-ca", default="", metavar="FILE",
                      help="CA of the coordinator's certificate, if it serves TLS")
    inst.add_argument("--force", action="store_true",
                      help="keep an existing hook as NAME.orig (run first) instead of refusing")
    inst.set_defaults(handler=hook.cmd_install)
    fl = hook_sub.add_parser("flush", help="send the changes the hook spooled",
                             description="Send the changes the hook spooled while the coordinator "
                                         "was unreachable (nothing is sent twice).")
    fl.add_argument("--repo", required=True, metavar="PATH")
    fl.add_argument("--coordinator", default="", metavar="HOST:PORT",
                    help="default: the one given to `gantry hook install`")
    fl.set_defaults(handler=hook.cmd_flush)


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("gantry")
    except Exception:  # not installed as a distribution (running from a checkout)
        return "0.1.0"


def delegate(word: str, argv: list[str]) -> int:
    """Run `gantry WORD ...` through the package that implements it."""
    module_name, function, what, _ = DELEGATED[word]
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        if err.name and module_name.startswith(err.name):
            print(f"gantry: {what} is not installed here", file=sys.stderr)
        else:
            print(f"gantry: cannot load {what}: {err}", file=sys.stderr)
        return 2
    entry = getattr(module, function, None)
    if entry is None:
        print(f"gantry: {what} here has no `{function}` entry point", file=sys.stderr)
        return 2
    result = entry(argv)
    return int(result or 0)


def run_async(coro: Coroutine[Any, Any, int]) -> int:
    """Run a command's coroutine on uvloop when available."""
    try:
        import uvloop

        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(coro)


def _worker_admin(argv: list[str]) -> bool:
    """`gantry worker pause|drain|resume` is a client command; `gantry worker start` the agent."""
    from clients import worker_admin

    return worker_admin.is_admin_command(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `gantry` console script."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] in DELEGATED and not _worker_admin(args_list):
        return delegate(args_list[0], args_list[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exit_:  # --help, --version, usage errors
        return exit_.code if isinstance(exit_.code, int) else 2
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return run_async(args.handler(args))
    except GantryError as err:
        print(f"gantry: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0 if args.command == "watch" else 130
    except BrokenPipeError:
        # The reader went away (`gantry log ... | head`): not an error worth a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
