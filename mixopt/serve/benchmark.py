"""``mixopt benchmark``: suites of scenarios x strategies (the baselines and an optimised policy).

Every (scenario, strategy) pair is simulated on the same seeds and its trajectories are written as a
part file under ``OUT/parts`` as soon as it finishes, so an interrupted run resumes where it stopped
(the optimised strategy's search is an Optuna study in ``OUT/studies.log``, resumed the same way).
Then the results are gathered into ``results.csv`` (every metric, generation, strategy: mean, std,
95% CI), ``summary.csv`` and ``summary.md`` (the final objective per scenario and strategy), the
figures (PNG): the objective over generations with 95% bands, the Pareto front of quality vs human
data used, a heatmap of the final objective over human fraction x retention; and ``report.md``
embedding them.
"""
import json
from pathlib import Path

import numpy as np
import pandas as pd

from mixopt import config as config_mod
from mixopt.errors import ConfigError
from mixopt.serve.report import HEATMAP_RETENTIONS, write_report

HEATMAP_FRACTIONS = (0.0, 0.05, 0.1, 0.2, 0.5)

SUITES = {
    "smoke": {  # seconds: what the tests run
        "seeds": 64, "trials": 6, "heatmap": (0.0, 0.2), "scenarios": {
            "gaussian-T4": ({"family": "gaussian", "generations": 4, "samples": 30, "human_budget": 60}, "final:kl"),
        }},
    "default": {  # a few minutes on a 2-core machine
        "seeds": 300, "trials": 24, "heatmap": HEATMAP_FRACTIONS, "scenarios": {
            "gaussian-T10": ({"family": "gaussian", "generations": 10, "samples": 50, "human_budget": 300},
                             "final:kl"),
            "categorical-T10": ({"family": "categorical", "generations": 10, "samples": 500, "human_budget": 1500,
                                 "truth": {"vocab": 100}}, "final:tv"),
            "regression-T10": ({"family": "regression", "generations": 10, "samples": 50, "human_budget": 300,
                                "truth": {"dim": 5}}, "final:test_error"),
        }},
    "full": {
        "seeds": 1000, "trials": 60, "heatmap": HEATMAP_FRACTIONS, "scenarios": {
            "gaussian-T20": ({"family": "gaussian", "generations": 20, "samples": 100, "human_budget": 600},
                             "final:kl"),
            "gaussian-T20-polluted": ({"family": "gaussian", "generations": 20, "samples": 100, "human_budget": 600,
                                       "contamination": 0.3, "truth": {"temperature": 0.9}}, "final:kl"),
            "categorical-T20": ({"family": "categorical", "generations": 20, "samples": 1000, "human_budget": 5000},
                                "final:tv"),
            "categorical-minority": ({"family": "categorical", "generations": 20, "samples": 1000,
                                      "human_budget": 3000, "truth": {"minority": 0.1, "minority_size": 100,
                                                                      "temperature": 0.9}},
                                     "final:minority_share"),
            "regression-T20": ({"family": "regression", "generations": 20, "samples": 50, "human_budget": 500,
                                "truth": {"dim": 10}}, "final:test_error"),
            "gmm-T10": ({"family": "gmm", "generations": 10, "samples": 1000, "human_budget": 3000}, "final:kl"),
            "neural-T8": ({"family": "neural", "generations": 8, "samples": 2000, "human_budget": 6000},
                          "final:kl"),
        }},
}


def _tasks(suite: dict, seeds: int) -> list[tuple[str, str, object, str]]:
    """(scenario name, strategy name, config or None for 'optimised', objective) of the suite."""
    from mixopt.optimizers.space import baseline_configs

    tasks = []
    for name, (scenario, objective) in suite["scenarios"].items():
        base = config_mod.from_dict({"scenario": scenario, "run": {"seeds": seeds}})
        for strategy, config in baseline_configs(base).items():
            tasks.append((name, strategy, config, objective))
        tasks.append((name, "optimised", base, objective))
        for retention in HEATMAP_RETENTIONS:
            for fraction in suite["heatmap"]:
                changes = {"retention": retention, "human_fraction": fraction, "human_weight": None}
                tasks.append((name, f"grid:{retention}:{fraction:g}", _with(base, changes), objective))
    return tasks


def _with(config, changes):
    from mixopt.optimizers.space import with_policy

    return with_policy(config, **changes)


def _records(config, objective_text: str, scenario: str, strategy: str) -> pd.DataFrame:
    from mixopt import montecarlo
    from mixopt.errors import SimulationError

    try:
        result = montecarlo.simulate(config)
    except SimulationError as err:  # a degenerate strategy is a result too: recorded, not fatal
        return pd.DataFrame([{"scenario": scenario, "strategy": strategy, "error": str(err)}])
    table = result.trajectory.copy()
    half = 1.96 * table["std"] / np.sqrt(table["seeds"])
    table = table.assign(ci_low=table["mean"] - half, ci_high=table["mean"] + half)
    human_used = result.per_seed["human_used"][:, -1].mean()
    return table.assign(scenario=scenario, strategy=strategy, objective=objective_text, human_used=human_used,
                        policy=json.dumps(_policy(config)), error="")


def _policy(config) -> dict:
    from mixopt.optimizers.space import policy_dict

    return policy_dict(config.policy)


def _optimised(config, objective_text: str, trials: int, storage: str, name: str):
    from mixopt.families import make_family
    from mixopt.objectives import parse
    from mixopt.optimizers.search import optimize_search
    from mixopt.optimizers.space import RECOMMEND_SPACE

    family = make_family(config.scenario.family, config.scenario.truth, num_samples=config.scenario.samples)
    objective = parse(objective_text, family.metric_names + ("human_used",))
    return optimize_search(config, objective, RECOMMEND_SPACE, trials=trials, storage=storage,
                           study_name=f"benchmark-{name}", seeds=min(config.run.seeds, 128), seed=config.run.seed).config


def run(suite_name: str = "default", out: str | None = None, *, seeds: int | None = None, trials: int | None = None,
        progress: bool = False) -> pd.DataFrame:
    """Runs (or resumes) a suite; writes every file under ``out``; returns the summary table."""
    if suite_name not in SUITES:
        raise ConfigError(f"suite must be one of {', '.join(SUITES)}, got {suite_name!r}")
    suite = SUITES[suite_name]
    seeds = suite["seeds"] if seeds is None else seeds
    trials = suite["trials"] if trials is None else trials
    if seeds < 2 or trials < 1:
        raise ConfigError(f"seeds must be >= 2 and trials >= 1, got {seeds} and {trials}")
    root = Path(out or f"mixopt-benchmark-{suite_name}")
    parts = root / "parts"
    try:
        parts.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"out {root}: cannot create: {err.strerror}") from None
    tasks = _tasks(suite, seeds)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks), desc=f"benchmark {suite_name}")
    for scenario, strategy, config, objective in tasks:
        path = parts / f"{scenario}__{strategy.replace(':', '_')}__{seeds}.csv"
        if not path.exists():  # done by an earlier, interrupted run: kept
            if strategy == "optimised":
                config = _optimised(config, objective, trials, str(root / "studies.log"), scenario)
            table = _records(config, objective, scenario, strategy)
            tmp = path.with_suffix(".tmp")
            table.to_csv(tmp, index=False)
            tmp.replace(path)  # whole or absent: a Ctrl-C never leaves half a part
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    results = pd.concat([pd.read_csv(parts / f"{s}__{k.replace(':', '_')}__{seeds}.csv", keep_default_na=False,
                                     na_values=[""]) for s, k, _, _ in tasks], ignore_index=True)
    return write_report(results, root, suite_name)
