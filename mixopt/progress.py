"""Progress of the long phases (start-up, trials, gradient steps, baselines, final evaluation, benchmark
parts, atlas scenarios) on stderr: a tqdm bar on a terminal, and a plain line every few seconds when
stderr is not one (a log file, CI), so a long run never sits silent. Off unless switched on
(``enable``: the CLI does, unless ``--quiet``), so library callers get no output. No JAX at import.
"""
import sys
import time

_STATE = {"enabled": False, "every": 5.0}


def enable(on: bool = True, *, every: float = 5.0) -> None:
    """Switches progress output on (or off); ``every``: seconds between plain lines off a terminal."""
    _STATE.update(enabled=on, every=every)


def enabled() -> bool:
    return _STATE["enabled"]


def note(text: str) -> None:
    """One line about a phase that has no count (e.g. "compiling the simulator")."""
    if _STATE["enabled"]:
        print(f"mixopt: {text}", file=sys.stderr, flush=True)


class Phase:
    """A counted phase: ``update(n)`` as work is done, ``close()`` at the end (or use ``with``)."""

    def __init__(self, name: str, total: int | None = None, *, unit: str = ""):
        self.name, self.total, self.unit, self.n = name, total, unit, 0
        self.bar = None
        self.started = self.last = time.monotonic()
        if not _STATE["enabled"]:
            return
        if sys.stderr.isatty():
            from tqdm.auto import tqdm  # Optuna's own progress-bar dependency

            self.bar = tqdm(total=total, desc=name, unit=unit or "it", file=sys.stderr)
        else:
            note(f"{name}: started{f' ({total} {unit})' if total else ''}")

    def update(self, n: int = 1, *, to: int | None = None) -> None:
        step = (to - self.n) if to is not None else n
        self.n += step
        if self.bar is not None:
            self.bar.update(step)
        elif _STATE["enabled"] and time.monotonic() - self.last >= _STATE["every"]:
            self.last = time.monotonic()
            of = f"/{self.total}" if self.total else ""
            note(f"{self.name}: {self.n}{of} {self.unit} ({time.monotonic() - self.started:.0f} s)".replace("  ", " "))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif _STATE["enabled"]:
            note(f"{self.name}: done, {self.n} {self.unit} in {time.monotonic() - self.started:.1f} s".replace("  ", " "))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class Waiting:
    """A phase without a count (one compiled program running, e.g. every gradient step in one
    ``lax.scan``): a line at the start, a heartbeat every few seconds while it runs, a line at the end.
    With ``after`` > 0 it says nothing unless the phase lasts that long (a quick run stays quiet)."""

    def __init__(self, name: str, *, after: float = 0.0):
        self.name, self.after, self.spoke = name, after, False

    def __enter__(self):
        import threading

        self.started = time.monotonic()
        self.stop = threading.Event()
        if _STATE["enabled"]:
            if not self.after:
                self._say("started")
            self.thread = threading.Thread(target=self._beat, daemon=True)
            self.thread.start()
        return self

    def _say(self, text: str) -> None:
        self.spoke = True
        note(f"{self.name}: {text}")

    def _beat(self):
        if self.after and not self.stop.wait(self.after):
            self._say(f"running ({time.monotonic() - self.started:.0f} s)")
        while not self.stop.wait(_STATE["every"]):
            self._say(f"running ({time.monotonic() - self.started:.0f} s)")

    def __exit__(self, *exc):
        self.stop.set()
        if _STATE["enabled"]:
            self.thread.join()
            if self.spoke:
                note(f"{self.name}: done in {time.monotonic() - self.started:.1f} s")
        return False


class enabled_for:
    """Progress on for one call (the Python API's long jobs), then as it was."""

    def __init__(self, on: bool):
        self.on = on

    def __enter__(self):
        self.before = dict(_STATE)
        if self.on:
            _STATE["enabled"] = True
        return self

    def __exit__(self, *exc):
        _STATE.update(self.before)
        return False
