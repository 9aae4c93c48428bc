"""`python -m worker_agent start ...` (same arguments as `gantry worker start ...`)."""

import os
import sys

# grpc's fork handlers off unless asked for (why: coordinator/__main__.py), before grpc is imported.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

from worker_agent.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
