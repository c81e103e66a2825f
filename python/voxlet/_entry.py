"""The `voxlet` command's entry point. Ctrl-C (SIGTERM, SIGHUP) while modules are still being
imported exits 130 (128 + the signal) quietly, as it does at any later point (`voxlet.cli`
handles that part): an interrupt inside an extension's import (numpy, torch) would otherwise
surface as a confusing ImportError, and a SIGTERM kill the process without a word."""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import threading

TYPE_CHECKING = False  # no typing import at start-up
if TYPE_CHECKING:
    from collections.abc import Iterator

_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _quiet_exit(signum: int, frame: object) -> None:
    # only used while importing: nothing is open yet, no file, no thread
    os._exit(130 if signum == signal.SIGINT else 128 + signum)


def _quiet_signals() -> dict[int, object]:
    return {sig: signal.signal(sig, _quiet_exit) for sig in _SIGNALS}


def _restore(previous: dict[int, object]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)  # type: ignore[arg-type]


@contextlib.contextmanager
def quiet_signals() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP mean "exit now, quietly" inside the block (on the main
    thread; elsewhere no handler can be set and nothing changes). For work that opens nothing:
    imports, parsing the command line."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = _quiet_signals()
    try:
        yield
    finally:
        _restore(previous)


def import_quietly(module: str) -> None:
    """Imports `module` inside `quiet_signals`."""
    with quiet_signals():
        importlib.import_module(module)


def main() -> int:
    # quiet from voxlet's first line on: only Python's own start-up (site, the package's
    # __init__, which imports nothing heavy) comes before it
    previous = _quiet_signals()
    try:
        from voxlet._process import tune_process

        tune_process()  # before torch loads: OpenMP's wait policy is read once
        from voxlet import cli
    except BaseException:
        _restore(previous)
        raise
    # straight from "exit quietly" to the command's own handlers, never through the default
    _restore({signal.SIGINT: previous[signal.SIGINT]})
    _restore({sig: cli.unwind_on_signal for sig in _SIGNALS if sig != signal.SIGINT})
    try:
        return cli.main()
    except KeyboardInterrupt:  # between the handlers above and the command's own try
        return 130
    except cli.Terminated as e:
        return e.exit_code
    finally:
        _restore({sig: previous[sig] for sig in _SIGNALS if sig != signal.SIGINT})
