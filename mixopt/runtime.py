"""The process's runtime settings: Ctrl-C that is never lost, the persistent compilation cache, and a
bounded memo of compiled programs (``Programs``).

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
import weakref
from collections import OrderedDict
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


class Programs:
    """A bounded, per-process memo of compiled programs (least recently used dropped beyond ``size``).

    Each compiled XLA CPU executable keeps a few memory mappings of its code for as long as it lives,
    and Linux allows a process 65530 of them (``vm.max_map_count``): a process that keeps every program
    it ever compiled (a test worker running the whole suite, a long API session over many scenarios)
    runs out, and LLVM aborts the next compile ("Fatal Python error: Aborted" in
    ``backend_compile_and_load``, seen in CI with 52k mappings in one worker). ``clear_programs``
    drops every memo and JAX's own caches."""

    _every = weakref.WeakSet()  # every live memo, for clear_programs

    def __init__(self, size: int = 32):
        self.size = size
        self._items = OrderedDict()
        Programs._every.add(self)

    def get(self, key, make):
        """The program stored under ``key``, made by ``make()`` the first time."""
        if key in self._items:
            self._items.move_to_end(key)
        else:
            self._items[key] = make()
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return self._items[key]

    def __len__(self):
        return len(self._items)


def clear_programs() -> None:
    """Releases every compiled program of this process (the memos and JAX's caches); the next use
    traces again and loads from the persistent compilation cache where it is on."""
    import gc

    import jax

    for memo in Programs._every:
        memo._items.clear()
    jax.clear_caches()
    gc.collect()
