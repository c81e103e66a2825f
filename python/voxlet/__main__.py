"""`python -m voxlet` runs the CLI."""

from voxlet.cli import main

raise SystemExit(main())
