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
import math
from pathlib import Path

import numpy as np
import pandas as pd

from mixopt import config as config_mod
from mixopt.errors import ConfigError
from mixopt.serve.report import HEATMAP_RETENTIONS, write_report

from mixopt.serve.suites import HEATMAP_FRACTIONS, SUITES

BUDGET_POINTS = 5  # budgets of the budget-quality curve: M (nothing fresh) to M (T + 1) (every sample human)


def load_suite(name_or_path: str) -> dict:
    """A built-in suite by name, or a user's suite file (TOML), checked before anything runs.

    A suite file (DESIGN.md section 4) holds optional ``seeds``, ``trials``, ``heatmap`` (human
    fractions) and ``budget_points``, and one ``[[scenario]]`` table per scenario: its ``name``, its
    ``objective``, the keys of a config's ``[scenario]`` (a ``[scenario.truth]`` table after it) and
    optionally ``strategies``: baseline names, ``optimised``, or policy files (``.json``/``.toml``: a
    ``[policy]`` table, e.g. what ``mixopt optimize --format json`` wrote), relative to the suite file,
    and ``policy``: a ``[scenario.policy]`` table of the policy keys the scenario's pipeline fixes (its
    constraints: the baselines, the heatmap and the optimised strategy keep them).
    """
    if name_or_path in SUITES:
        suite = SUITES[name_or_path]
        return {**suite, "name": name_or_path, "budget_points": suite.get("budget_points", BUDGET_POINTS),
                "scenarios": {n: {"scenario": sc, "objective": obj, "strategies": None, "policy": rest[0] if rest else {},
                                  **(rest[1] if len(rest) > 1 else {})} for n, (sc, obj, *rest) in suite["scenarios"].items()}}
    path = Path(name_or_path)
    if path.suffix != ".toml":
        raise ConfigError(f"suite must be one of {', '.join(SUITES)} or a suite file (.toml), got {name_or_path!r}")
    data = config_mod.read_file(path)
    where = f"suite {path}"
    unknown = set(data) - {"seeds", "trials", "heatmap", "budget_points", "scenario"}
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r} (allowed: seeds, trials, heatmap, "
                          "budget_points, [[scenario]])")
    tables = data.get("scenario")
    if not isinstance(tables, list) or not tables:
        raise ConfigError(f"{where}: needs at least one [[scenario]] table (a name, an objective and the "
                          "[scenario] keys)")
    out = {"name": path.stem, "seeds": data.get("seeds", 300), "trials": data.get("trials", 24),
           "heatmap": tuple(data.get("heatmap", HEATMAP_FRACTIONS)),
           "budget_points": data.get("budget_points", BUDGET_POINTS), "scenarios": {}}
    for key in ("seeds", "trials", "budget_points"):
        if not isinstance(out[key], int) or out[key] < (2 if key == "seeds" else 0):
            raise ConfigError(f"{where}: {key} must be a whole number >= {2 if key == 'seeds' else 0}, got {out[key]!r}")
    for number, table in enumerate(tables, start=1):
        name = table.get("name")
        if not isinstance(name, str) or not name or name in out["scenarios"]:
            raise ConfigError(f"{where}: [[scenario]] number {number} needs a name of its own, got {name!r}")
        here = f"{where}: scenario {name!r}"
        if "objective" not in table:
            raise ConfigError(f'{here} needs an objective (e.g. objective = "final:kl")')
        keys = {k: v for k, v in table.items() if k not in ("name", "objective", "strategies", "policy")}
        fixed = table.get("policy", {})
        try:
            base = config_mod.from_dict({"scenario": keys, "policy": fixed})
        except ConfigError as err:
            raise ConfigError(f"{here}: {err}") from None
        _check_objective(base, table["objective"], here)
        strategies = table.get("strategies")
        if strategies is not None:
            strategies = [_strategy(base, s, path.parent, here) for s in strategies]
        out["scenarios"][name] = {"scenario": keys, "objective": table["objective"], "strategies": strategies,
                                  "policy": fixed}
    return out


def _check_objective(base, objective: str, where: str) -> None:
    from mixopt.objectives import parse

    try:
        parse(objective, None)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None


def _strategy(base, spec, folder: Path, where: str):
    """A suite's strategy: a baseline name, ``optimised``, or a policy file, as (name, policy dict or None)."""
    from mixopt.optimizers.baselines import baseline_configs
    from mixopt.optimizers.constraints import constraints

    if not isinstance(spec, str):
        raise ConfigError(f"{where}: a strategy is a name or a policy file path, got {spec!r}")
    names = list(baseline_configs(base, constraints(base)))
    if spec in names or spec == "optimised":
        return spec, None
    path = folder / spec
    if path.suffix not in (".json", ".toml"):
        raise ConfigError(f"{where}: strategy {spec!r} is neither a baseline ({', '.join(names)}), "
                          "'optimised' nor a policy file (.json or .toml)")
    policy = config_mod.read_file(path)
    policy = policy.get("policy", policy)
    try:
        config_mod.from_dict({"scenario": base.to_dict()["scenario"], "policy": policy})
    except ConfigError as err:
        raise ConfigError(f"{where}: policy file {spec}: {err}") from None
    return path.stem, policy


def _tasks(suite: dict, seeds: int) -> list[tuple[str, str, object, str]]:
    """(scenario name, strategy name, config, objective) of the suite; the ``optimised`` config is the
    scenario's, searched when its part is made."""
    from mixopt.optimizers.baselines import baseline_configs, budget_matched
    from mixopt.optimizers.constraints import constraints
    from mixopt.serve.target import at_budget, grid

    tasks = []
    for name, entry in suite["scenarios"].items():
        base = config_mod.from_dict({"scenario": entry["scenario"], "policy": entry["policy"], "run": {"seeds": seeds}})
        objective = entry["objective"]
        fixed = constraints(base)
        baselines = baseline_configs(base, fixed)
        chosen = entry["strategies"] or [*[(n, None) for n in baselines], ("optimised", None)]
        for strategy, policy in chosen:
            if policy is not None:
                config = config_mod.from_dict({"scenario": entry["scenario"], "policy": {**policy, **entry["policy"]},
                                               "run": {"seeds": seeds}})
            else:
                config = baselines.get(strategy, base)
            tasks.append((name, strategy, config, objective))
        for retention in [fixed["retention"]] if "retention" in fixed else HEATMAP_RETENTIONS:
            for fraction in [] if "human_fraction" in fixed else suite["heatmap"]:
                changes = {"retention": retention, "human_fraction": fraction, "human_weight": None, **fixed}
                tasks.append((name, f"grid:{retention}:{fraction:g}", _with(base, changes), objective))
        if suite["budget_points"] and math.isfinite(base.scenario.human_budget):
            for budget in grid(base, suite["budget_points"]):
                for strategy, config in baseline_configs(at_budget(base, budget), fixed).items():
                    if budget_matched(strategy):
                        tasks.append((name, f"budget:{budget}:{strategy}", config, objective))
    return tasks


def _with(config, changes):
    from mixopt.optimizers.space import with_policy

    return with_policy(config, **changes)


def _records(config, objective_text: str, scenario: str, strategy: str) -> tuple:
    """(per-seed objective values or None, the part's trajectory records) of one strategy."""
    from mixopt import montecarlo
    from mixopt.errors import SimulationError

    try:  # montecarlo.runner keeps one program per structure: budget points and grid cells share it
        result = montecarlo.simulate(config)
    except SimulationError as err:  # a degenerate strategy is a result too: recorded, not fatal
        return None, pd.DataFrame([{"scenario": scenario, "strategy": strategy, "error": str(err)}])
    table = result.trajectory.copy()
    half = 1.96 * table["std"] / np.sqrt(table["seeds"])
    table = table.assign(ci_low=table["mean"] - half, ci_high=table["mean"] + half)
    human_used = result.per_seed["human_used"][:, -1].mean()
    return _objective_values(result.per_seed, objective_text), table.assign(scenario=scenario, strategy=strategy, objective=objective_text, human_used=human_used,
                        policy=json.dumps(_policy(config)), error="")


def _objective_values(per_seed: dict, objective_text: str) -> np.ndarray:
    from mixopt.objectives import parse

    return np.asarray(parse(objective_text, None)[0].value(per_seed), np.float64)


def _policy(config) -> dict:
    from mixopt.optimizers.space import policy_dict

    return policy_dict(config.policy)


def _optimised(config, objective_text: str, trials: int, storage: str, name: str, refine_steps: int = 0):
    from mixopt.families import make_family
    from mixopt.objectives import parse
    from mixopt.optimizers.search import optimize_search
    from mixopt.optimizers.constraints import constraints, recommend_space

    family = make_family(config.scenario.family, config.scenario.truth, num_samples=config.scenario.samples)
    objective = parse(objective_text, family.metric_names + ("human_used",))
    fixed = constraints(config)
    return optimize_search(config, objective, recommend_space(fixed), trials=trials, storage=storage, constraints=fixed,
                           study_name=f"benchmark-{name}", seeds=min(config.run.seeds, 128), seed=config.run.seed,
                           refine_steps=refine_steps).config


def run(suite_name: str = "default", out: str | None = None, *, seeds: int | None = None, trials: int | None = None,
        progress: bool = False) -> pd.DataFrame:
    """Runs (or resumes) a suite (a built-in name or a suite file, ``load_suite``); writes every file
    under ``out``; returns the summary table."""
    suite = load_suite(suite_name)
    seeds = suite["seeds"] if seeds is None else seeds
    trials = suite["trials"] if trials is None else trials
    if seeds < 2 or trials < 1:
        raise ConfigError(f"seeds must be >= 2 and trials >= 1, got {seeds} and {trials}")
    root = Path(out or f"mixopt-benchmark-{suite['name']}")
    parts = root / "parts"
    try:
        parts.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"out {root}: cannot create: {err.strerror}") from None
    tasks = _tasks(suite, seeds)
    from mixopt.progress import Phase

    bar = Phase(f"benchmark {suite['name']}", len(tasks), unit="parts") if progress else None
    for scenario, strategy, config, objective in tasks:
        path = _part(parts, scenario, strategy, seeds)
        if not path.exists():  # done by an earlier, interrupted run: kept
            if strategy == "optimised":
                config = _optimised(config, objective, trials, str(root / "studies.log"), scenario,
                                    suite["scenarios"][scenario].get("refine_steps", 0))
            values, table = _records(config, objective, scenario, strategy)
            if values is not None:  # the objective per seed, for paired margins (saved before the part)
                np.save(path.with_suffix(".npy"), values)
            tmp = path.with_suffix(".tmp")
            table.to_csv(tmp, index=False)
            tmp.replace(path)  # whole or absent: a Ctrl-C never leaves half a part
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    results = pd.concat([pd.read_csv(_part(parts, s, k, seeds), keep_default_na=False, na_values=[""])
                         for s, k, _, _ in tasks], ignore_index=True)
    per_seed = {(s, k): np.load(_part(parts, s, k, seeds).with_suffix(".npy"))
                for s, k, _, _ in tasks if _part(parts, s, k, seeds).with_suffix(".npy").exists()}
    scenarios = {name: {"scenario": config_mod.from_dict({"scenario": e["scenario"]}).to_dict()["scenario"],
                        "objective": e["objective"], "constraints": e["policy"]} for name, e in suite["scenarios"].items()}
    return write_report(results, root, suite["name"], per_seed=per_seed, scenarios=scenarios)


def _part(parts: Path, scenario: str, strategy: str, seeds: int) -> Path:
    return parts / f"{scenario}__{strategy.replace(':', '_')}__{seeds}.csv"
