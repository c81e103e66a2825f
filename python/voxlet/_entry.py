"""The `voxlet` command's entry point. Ctrl-C (SIGTERM, SIGHUP) while modules are still being
imported exits 130 (128 + the signal) quietly, as it does at any later point (`voxlet.cli`
handles that part): an interrupt inside an extension's import (numpy, torch) would otherwise
surface as a confusing ImportError, and a SIGTERM kill the process without a word."""

from __future__ import annotations

import importlib
import os
import signal
import threading

_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _quiet_exit(signum: int, frame: object) -> None:
    # only used while importing: nothing is open yet, no file, no thread
    os._exit(130 if signum == signal.SIGINT else 128 + signum)


def import_quietly(module: str) -> None:
    """Imports `module` with Ctrl-C, SIGTERM and SIGHUP meaning "exit now, quietly" (on the
    main thread)."""
    if threading.current_thread() is not threading.main_thread():
        importlib.import_module(module)
        return
    previous = {sig: signal.signal(sig, _quiet_exit) for sig in _SIGNALS}
    try:
        importlib.import_module(module)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main() -> int:
    from voxlet._process import tune_process

    tune_process()  # before torch loads: OpenMP's wait policy is read once
    import_quietly("voxlet.cli")
    from voxlet.cli import main as cli_main

    return cli_main()
