"""The `voxlet` command's entry point. Ctrl-C while the command line's modules are still being
imported exits 130 quietly, as it does at any later point (`voxlet.cli` handles that part)."""

from __future__ import annotations

import os
import signal


def _quiet_exit(signum: int, frame: object) -> None:
    os._exit(130)  # nothing is open yet: no file, no thread


def main() -> int:
    previous = signal.signal(signal.SIGINT, _quiet_exit)
    from voxlet.cli import main as cli_main

    signal.signal(signal.SIGINT, previous)
    return cli_main()
