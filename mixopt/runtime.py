"""The process's runtime settings: Ctrl-C that is never lost, and the persistent compilation cache.

Ctrl-C: a request is recorded before it is raised.

Python runs a SIGINT handler between bytecodes; when that happens inside a callback that C++ calls
(JAX's garbage-collection callback, say), the KeyboardInterrupt is swallowed and printed as
"Exception ignored ... Traceback", and the program goes on as if nothing was asked. Recording the
request first lets long jobs (the Optuna search) see it at their next checkpoint and stop cleanly.
"""
import os
import signal
import sys
import threading
from pathlib import Path

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


CACHE_MAX_BYTES = 4 << 30  # the persistent cache's size: least recently used programs go beyond it


def share_compilation_cache(cache_dir: str) -> None:
    """Uses ``cache_dir`` as JAX's persistent compilation cache, safely shared by several processes.

    JAX writes a cache entry in place; without eviction it reads and writes without a lock, so a
    process reading an entry another process is still writing gets a torn executable and aborts
    (seen: "Fatal Python error: Aborted" in ``get_executable_and_time`` with two test workers). A
    size limit turns on JAX's LRU eviction, which takes a file lock (``filelock``) around every read
    and write."""
    import jax

    jax.config.update("jax_compilation_cache_dir", str(cache_dir))
    jax.config.update("jax_compilation_cache_max_size", CACHE_MAX_BYTES)


def enable_compilation_cache() -> None:
    """JAX's persistent compilation cache in ``$MIXOPT_CACHE_DIR`` (default ``~/.cache/mixopt/jax-locked``;
    the locked layout keeps an access-time file beside each entry, so it cannot reuse an older folder):
    a second run of the same structure, in any process, loads its programs instead of compiling."""
    import jax

    cache = os.environ.get("MIXOPT_CACHE_DIR") or (
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mixopt" / "jax-locked")
    share_compilation_cache(str(cache))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
