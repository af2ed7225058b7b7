"""Ctrl-C during an Optuna study: never inside a storage write, and never lost."""
import contextlib
import signal
import sys
import threading

from mixopt import runtime


class DeferredInterrupt:
    """Ctrl-C that never lands inside a storage write.

    A KeyboardInterrupt raised while Optuna holds the journal's file lock (or mid-transaction)
    leaves the lock half released and ends in an unrelated error. Inside the objective (the
    simulation) Ctrl-C interrupts at once and the trial is stored as PRUNED (user attribute
    ``interrupted``; no traceback on the terminal); anywhere else it asks the study to stop after the
    current step. Either way KeyboardInterrupt is raised once ``study.optimize`` has returned.
    """

    def __init__(self, study):
        self.study = study
        self.in_objective = False

    @property
    def pending(self) -> bool:
        return runtime.requested()

    def __call__(self, signum, frame):
        runtime.mark()
        if self.in_objective:
            self.in_objective = False
            raise KeyboardInterrupt
        with contextlib.suppress(RuntimeError):  # outside the optimize loop: the flag alone suffices
            self.study.stop()

    @contextlib.contextmanager
    def installed(self):
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        if runtime.consume():  # pressed before the search began, and swallowed
            raise KeyboardInterrupt
        previous = signal.signal(signal.SIGINT, self)
        previous_hook, sys.unraisablehook = sys.unraisablehook, runtime.unraisable_hook
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
            sys.unraisablehook = previous_hook
        if runtime.consume():
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def objective(self, trial):
        import optuna

        self.in_objective = True
        try:
            yield
        except BaseException as err:
            # After a Ctrl-C, any error is its echo: JAX's C++ layer may turn the KeyboardInterrupt
            # into a runtime error of its own, which Optuna would store as FAIL and re-raise.
            if not (isinstance(err, KeyboardInterrupt) or self.pending):
                raise
            runtime.mark()
            trial.set_user_attr("interrupted", True)
            with contextlib.suppress(RuntimeError):
                self.study.stop()
            raise optuna.TrialPruned("interrupted") from None
        finally:
            self.in_objective = False
        if self.pending:  # the interrupt was swallowed on its way (mixopt.runtime): stop here
            with contextlib.suppress(RuntimeError):
                self.study.stop()

