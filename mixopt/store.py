"""Study storage (DESIGN.md section 6): one function turns a URL (or nothing) into an Optuna storage.

Default: an Optuna journal file ``mixopt-studies.log`` in the working directory (safe for several
worker processes on one machine); ``--storage`` or ``$MIXOPT_STORAGE`` override it with a journal
file path, ``sqlite:///...`` (one process) or ``postgresql://...`` (many workers, many machines).
"""
import os

from mixopt.errors import ConfigError

DEFAULT_JOURNAL = "mixopt-studies.log"


def resolve_url(url: str | None) -> str:
    return url or os.environ.get("MIXOPT_STORAGE") or DEFAULT_JOURNAL


def get_storage(url: str | None):
    """An Optuna storage for ``url``; a one-line ConfigError when it cannot be opened."""
    import warnings

    import optuna
    from optuna.storages import JournalStorage, RDBStorage
    from optuna.storages.journal import JournalFileBackend

    url = resolve_url(url)
    if url.startswith("postgresql"):
        try:
            import psycopg  # noqa: F401 (SQLAlchemy 2.1 maps postgresql:// to psycopg 3)
        except ImportError:
            raise ConfigError(f"--storage {url}: the PostgreSQL driver is missing; "
                              "install it with: pip install 'mixopt[postgres]'") from None
    try:
        if "://" not in url:
            return JournalStorage(JournalFileBackend(url))
        if url.startswith(("sqlite:", "postgresql:", "postgresql+")):
            # A worker that dies leaves a RUNNING trial; heartbeats let the next run fail and retry it.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(url, heartbeat_interval=30, grace_period=90,
                                  heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                                      max_retry=1))
    except Exception as err:  # noqa: BLE001 - any driver error becomes one line
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"--storage {url}: cannot open the study storage: {first}") from None
    raise ConfigError(f"--storage {url}: expected a journal file path, sqlite:///PATH or postgresql://...")
