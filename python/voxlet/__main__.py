"""`python -m voxlet` runs the CLI."""

from voxlet._entry import main

raise SystemExit(main())
