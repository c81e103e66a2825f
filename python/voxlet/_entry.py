"""The `voxlet` command's entry point. Ctrl-C while modules are still being imported exits 130
quietly, as it does at any later point (`voxlet.cli` handles that part): an interrupt inside
an extension's import (numpy, torch) would otherwise surface as a confusing ImportError."""

from __future__ import annotations

import importlib
import os
import signal
import threading


def _quiet_exit(signum: int, frame: object) -> None:
    os._exit(130)  # only used while importing: nothing is open yet, no file, no thread


def import_quietly(module: str) -> None:
    """Imports `module` with Ctrl-C meaning "exit 130 now" (on the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        importlib.import_module(module)
        return
    previous = signal.signal(signal.SIGINT, _quiet_exit)
    try:
        importlib.import_module(module)
    finally:
        signal.signal(signal.SIGINT, previous)


def main() -> int:
    import_quietly("voxlet.cli")
    from voxlet.cli import main as cli_main

    return cli_main()
