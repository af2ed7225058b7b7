"""The Python API: the CLI's jobs as functions with keyword arguments that return plain objects.

A ``config`` is a ``Config``, a dict of ``scenario`` / ``policy`` / ``run`` tables, or the path of
a TOML file. Errors are ``ConfigError`` (bad input, naming the argument) and ``SimulationError``
(a simulation degenerated).

    import mixopt
    result = mixopt.simulate({"scenario": {"generations": 5, "samples": 100}, "run": {"seeds": 50}})
    result.trajectory          # pandas: generation, metric, mean, std, seeds
    best = mixopt.optimize({"scenario": {"generations": 5, "samples": 100, "human_budget": 300}},
                           objective="final:kl", space="human_fraction", trials=20)
    best["policy"], best["objective"]["mean"], best["baselines"]
"""
from pathlib import Path

import pandas as pd

from mixopt import config as config_mod
from mixopt.config import Config


def _as_config(config) -> Config:
    if isinstance(config, Config):
        return config
    if isinstance(config, dict):
        return config_mod.from_dict(config)
    if isinstance(config, (str, Path)) or config is None:
        return config_mod.load(config)
    raise TypeError(f"config must be a Config, a dict of tables or a TOML path, got {type(config).__name__}")


def simulate(config=None, *, progress: bool = True):
    """Simulates ``config`` over its seeds: a ``Result`` with ``trajectory`` (pandas, long format:
    generation, metric, mean, std, seeds) and ``per_seed`` (metric -> (seeds, T + 1) array).
    ``progress``: a line on stderr every few seconds of a phase that lasts (compiling, simulating)."""
    from mixopt import montecarlo
    from mixopt.progress import enabled_for

    with enabled_for(progress):
        return montecarlo.simulate(_as_config(config))


def optimize(config=None, **options) -> dict:
    """Optimises the policy (``serve.optimize.optimize``: ``objective``, ``method``, ``space``,
    ``trials``, ``steps``, ``storage``, ...) and returns the report: ``policy``, ``description``,
    ``objective`` (mean and 95% CI on fresh seeds), ``human_used``, ``baselines``, ``source``."""
    from mixopt.progress import enabled_for
    from mixopt.serve.optimize import optimize as run

    options.setdefault("progress", True)  # what each long phase is doing, on stderr
    with enabled_for(options["progress"]):
        return run(_as_config(config), **options)


def recommend(config=None, objective: str = "final:kl", **options) -> dict:
    """The best known policy for ``config``'s scenario: from a stored study, the shipped atlas or a
    bounded search (``time_budget`` seconds); the report as ``optimize`` returns it, with ``source``."""
    from mixopt.progress import enabled_for
    from mixopt.serve.recommend import recommend as run

    options.setdefault("progress", True)
    with enabled_for(options["progress"]):
        return run(_as_config(config), objective, **options)


def benchmark(suite: str = "smoke", out: str | None = None, **options) -> pd.DataFrame:
    """Runs (or resumes) a benchmark suite, writes its tables, figures and report under ``out``, and
    returns the summary (final objective per scenario and strategy, with 95% CI and human data used)."""
    from mixopt.progress import enabled_for
    from mixopt.serve.benchmark import run

    options.setdefault("progress", True)
    with enabled_for(options["progress"]):
        return run(suite, out, **options)


def calibrate(measurements, predict=(), **options) -> dict:
    """Fits the world to measured curves (``measurements``: a measurements TOML path or its table, DESIGN.md
    section 4) and predicts the ``predict`` policies ((name, [policy] dict) pairs or TOML paths); the
    report as ``mixopt calibrate --format json`` prints it (``seeds``, ``seed``, ``steps``, ``trials``,
    ``structural``: metric -> a structural error known from other systems, as ``--structural``)."""
    from mixopt.calibration import measurements as measurements_mod
    from mixopt.calibration.report import calibrate as run

    measured = (measurements_mod.parse(measurements) if isinstance(measurements, dict)
                else measurements_mod.load(measurements))
    pairs = [measurements_mod.load_policy(p) if isinstance(p, (str, Path)) else p for p in predict]
    from mixopt.progress import enabled_for

    options.setdefault("progress", True)
    with enabled_for(options["progress"]):
        return run(measured, predict=pairs, **options)
