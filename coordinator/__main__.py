import sys

from coordinator.cli import main

raise SystemExit(main(sys.argv[1:]))
