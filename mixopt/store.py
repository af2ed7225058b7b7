"""Study storage (DESIGN.md section 6): URLs, study identity, open/resume, stale trials, stored reports.

One function turns a URL (or nothing) into an Optuna storage.

Default: an Optuna journal file ``mixopt-studies.log`` in the working directory (safe for several
worker processes on one machine); ``--storage`` or ``$MIXOPT_STORAGE`` override it with a journal
file path, ``sqlite:///...`` (one process) or ``postgresql://...`` (many workers, many machines).
"""
import hashlib
import json
import os
from pathlib import Path

from mixopt.config import Config
from mixopt.errors import ConfigError
from mixopt.objectives import Objective

DEFAULT_JOURNAL = "mixopt-studies.log"
REPORT_ATTR = "report:"  # study user attribute holding the report of an objective: "report:final:kl"


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
            raise ConfigError(f"storage {url}: the PostgreSQL driver is missing; "
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
        raise ConfigError(f"storage {url}: cannot open the study storage: {first}") from None
    raise ConfigError(f"storage {url}: expected a journal file path, sqlite:///PATH or postgresql://...")


def scenario_key(config: Config) -> str:
    """The canonical JSON of a scenario: what a stored study must match."""
    return json.dumps(config.to_dict()["scenario"], sort_keys=True)


def constraints_key(constraints: dict | None) -> str:
    """The canonical JSON of the user's constraints (``space.constraints``): a stored answer must
    keep the same ones, so two questions that differ only in what the user fixed never share one."""
    return json.dumps(constraints or {}, sort_keys=True)


def default_study_name(config: Config, objective_text: str, space: tuple[str, ...], method: str = "optuna",
                       constraints: dict | None = None) -> str:
    """A name that says what the study holds and is unique to what produced it: family, T, M, budget,
    objective, method, then a short hash of the full scenario, the constraints, objective, space and
    method, e.g. ``categorical-T12-M500-B1000-final_tv-optuna-7c1e2a9f04``. Stored studies are found
    by their scenario and constraints, not their name (``from_storage``), so studies under older
    names stay readable."""
    identity = "|".join([scenario_key(config), constraints_key(constraints), objective_text, ",".join(space), method])
    digest = hashlib.sha1(identity.encode()).hexdigest()[:10]
    s = config.scenario
    budget = "inf" if s.human_budget == float("inf") else f"{s.human_budget:g}"
    objective = objective_text.replace(":", "_").replace(",", "+")
    return f"{s.family}-T{s.generations}-M{s.samples}-B{budget}-{objective}-{method}-{digest}"


def open_study(config: Config, objectives: list[Objective], *, storage: str | None, study_name: str, sampler,
               space: tuple[str, ...] | None = None, constraints: dict | None = None):
    """Creates or resumes study ``study_name`` (``sampler``: an Optuna sampler); a study of that name
    made for another question (scenario, constraints, space or objective) is a ConfigError, never
    overwritten or answered from."""
    import optuna

    identity = {"scenario": scenario_key(config), "constraints": constraints_key(constraints),
                "objectives": [o.name for o in objectives]}
    if space is not None:
        identity["space"] = ",".join(space)
    study = optuna.create_study(study_name=study_name, storage=get_storage(storage), load_if_exists=True,
                                directions=[o.direction for o in objectives],
                                sampler=sampler)
    stored = study.user_attrs
    if stored.get("scenario") is not None and "constraints" not in stored:
        stored = {**stored, "constraints": constraints_key({})}  # made before constraints were stored
    differs = [k for k, v in identity.items() if stored.get(k, v) != v]
    if differs:
        raise ConfigError(f"study {study_name!r} exists with a different {' and '.join(differs)}; "
                          "choose another study name")
    for key, value in identity.items():
        study.set_user_attr(key, value)
    return study


def fail_stale_trials(study, *, older_than_s: float) -> int:
    """Marks RUNNING trials started more than ``older_than_s`` ago as FAILED (a killed worker's
    leftovers; PostgreSQL/SQLite storages also retry them by heartbeat). Returns how many."""
    import datetime

    import optuna

    now = datetime.datetime.now()
    stale = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
             if t.datetime_start and (now - t.datetime_start).total_seconds() > older_than_s]
    for trial in stale:
        study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
    return len(stale)


def store_report(study, objective: Objective, report: dict) -> None:
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    study.set_user_attr(REPORT_ATTR + objective.name, {**report, "trials": len(complete)})


def from_storage(config: Config, objective: Objective, storage: str | None,
                 constraints: dict | None = None) -> dict | None:
    """The stored report for this scenario, constraints and objective, or None. Nothing is simulated."""
    import optuna

    from mixopt.describe import describe_report

    url = resolve_url(storage)
    if "://" not in url and not Path(url).exists():
        return None  # no journal yet: nothing stored (and nothing created by asking)
    key, fixed = scenario_key(config), constraints_key(constraints)
    found = []
    for summary in optuna.get_all_study_summaries(get_storage(url), include_best_trial=False):
        attrs = summary.user_attrs
        report = attrs.get(REPORT_ATTR + objective.name)
        if report is not None and attrs.get("scenario") == key and attrs.get("constraints", constraints_key({})) == fixed:
            found.append({**report, "description": describe_report(report), "source": "study",
                          "study": summary.study_name})
    if not found:
        return None
    sign = 1.0 if objective.direction == "minimize" else -1.0  # several studies: the best report wins
    return min(found, key=lambda report: sign * report["objective"]["mean"])
