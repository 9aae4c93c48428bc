"""`python -m clients.lifeline PARENT_PID SIGNAL ARGV...`: exec ARGV so that it receives SIGNAL
when its parent dies, however it dies (SIGKILL included).

`gantry up` starts its coordinator and worker through this: in sessions of their own (the
terminal's Ctrl-C is for `gantry up`, which stops them in order), they would otherwise outlive
a killed `gantry up` and keep its port. Linux's PR_SET_PDEATHSIG survives exec; it is set here,
in a fresh process, because a `preexec_fn` in a parent running grpc threads is not safe to
fork with. Elsewhere the command simply runs (without the guarantee).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def set_parent_death_signal(sig: int) -> bool:
    """Ask the kernel to send `sig` to this process when its parent dies; False if unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def main(argv: list[str]) -> int:
    if len(argv) < 3 or not argv[0].isdigit():
        print("usage: python -m clients.lifeline PARENT_PID SIGNAL ARGV...", file=sys.stderr)
        return 2
    parent, sig = int(argv[0]), signal.Signals[argv[1]]
    set_parent_death_signal(sig)
    if os.getppid() != parent:  # the parent died before the signal was armed
        return 1
    try:
        os.execvp(argv[2], argv[2:])
    except OSError as err:
        print(f"cannot run {argv[2]}: {err}", file=sys.stderr)
        return 127
    return 0  # not reached


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
