"""`python -m clients ...` is the `gantry` command."""

from clients.cli import main

raise SystemExit(main())
