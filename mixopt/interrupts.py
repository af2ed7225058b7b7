"""Ctrl-C that is never lost: a request is recorded before it is raised.

Python runs a SIGINT handler between bytecodes; when that happens inside a callback that C++ calls
(JAX's garbage-collection callback, say), the KeyboardInterrupt is swallowed and printed as
"Exception ignored ... Traceback", and the program goes on as if nothing was asked. Recording the
request first lets long jobs (the Optuna search) see it at their next checkpoint and stop cleanly.
"""
import signal
import sys
import threading

_requested = False


def requested() -> bool:
    """Whether Ctrl-C was pressed since ``install`` (even if its KeyboardInterrupt was swallowed)."""
    return _requested


def mark() -> None:
    global _requested
    _requested = True


def consume() -> bool:
    """Whether a request is recorded, clearing it (so a later search in the same process runs)."""
    global _requested
    was, _requested = _requested, False
    return was


def _handler(signum, frame):
    del signum, frame
    mark()
    raise KeyboardInterrupt


def unraisable_hook(unraisable) -> None:
    """Drops a swallowed KeyboardInterrupt silently (it is recorded); anything else prints as usual."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
        mark()
        return
    sys.__unraisablehook__(unraisable)


def install() -> None:
    """Installs the recording handler and hook (main thread only; the CLI calls it first)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _handler)
        sys.unraisablehook = unraisable_hook
