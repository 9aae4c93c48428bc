import os
import sys

# grpc's fork handlers (GRPC_ENABLE_FORK_SUPPORT) act on every fork, also the fork+exec of a
# subprocess (git, a build step, a worker): they disturbed connections open at that moment (a
# stream closed, "unexpected settings ack"; grpc/grpc#37710). We never fork without exec, so they
# are off unless the user asks for them. This has to happen before grpc is first imported.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

from coordinator.cli import main  # noqa: E402

raise SystemExit(main(sys.argv[1:]))
