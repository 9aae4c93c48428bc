"""`python -m worker_agent start ...` (same arguments as `gantry worker start ...`)."""

import sys

from worker_agent.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
