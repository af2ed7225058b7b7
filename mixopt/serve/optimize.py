"""``mixopt optimize``: run a method, re-evaluate its policy on fresh seeds against the baselines.

Produces the JSON object of DESIGN.md section 4: ``policy``, ``objective``, ``human_used``,
``baselines``, ``source``.
"""
import time

from mixopt.config import Config
from mixopt.errors import ConfigError
from mixopt.families import make_family
from mixopt.objectives import parse
from mixopt.optimizers.gradient import gradient_start, optimize_gradient, saturated_keys
from mixopt.optimizers.search import optimize_search
from mixopt.optimizers.constraints import constraints as constraints_of
from mixopt.optimizers.space import parse_space
from mixopt.optimizers.evaluate import build_report
from mixopt.optimizers.search import SAMPLERS as SEARCH_SAMPLERS
from mixopt.serve.recommend import answer_source
from mixopt.store import default_study_name, store_report

METHODS = ("gradient", "optuna", "hybrid")
STARTS = ("best", "config")


def default_space(config: Config) -> str:
    """``--space`` where the user names none: the budget's free allocation over generations where a
    budget is finite (any spending plan: early, late, bursts), one constant fraction where it is not."""
    import math

    return "human_fraction" if math.isinf(config.scenario.human_budget) else "human_allocation"


def optimize(config: Config, *, objective: str = "final:kl", method: str = "optuna", space: str | tuple | None = None,
             trials: int = 50, steps: int = 200, learning_rate: float = 0.05, optimizer: str = "adam",
             refine_steps: int = 30, search: str = "tpe", timeout: float | None = None, storage: str | None = None,
             study: str | None = None, workers: int = 1, batch: int = 1, eval_seeds: int = 2000,
             start: str = "best", progress: bool = False) -> dict:
    """Optimises ``config``'s policy over the keys of ``space`` and reports it against the baselines.

    ``objective``: ``final:METRIC`` or ``mean:METRIC``, comma-separated for several (the search
    method's Pareto front). ``method``: ``gradient`` (optax through the relaxed simulator),
    ``optuna`` (a stored, resumable study; ``search`` names the sampler) or ``hybrid`` (each trial
    refined by ``refine_steps`` gradient steps). ``start`` (gradient): ``best`` starts from the best of
    the config's policy and the budget-matched heuristics of its retention, pulled inside the box
    (``gradient_start``); ``config`` from the config's policy as it is. Returns the DESIGN.md section
    4 object (with ``saturated``: fraction keys that ended where their gradient vanishes).
    ``space`` None: ``default_space``. Every policy key the config fixed and ``space`` leaves alone is a
    constraint (``space.constraints``): the baselines, the fallback and the study keep it; the
    report lists them under ``constraints``.
    """
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if start not in STARTS:
        raise ConfigError(f"start must be one of {', '.join(STARTS)}, got {start!r}")
    for name, value in (("workers", workers), ("batch", batch), ("trials", trials), ("steps", steps),
                        ("eval_seeds", eval_seeds)):
        if value < 1:
            raise ConfigError(f"{name} must be >= 1, got {value}")
    if method != "gradient" and search not in SEARCH_SAMPLERS:
        raise ConfigError(f"search must be one of {', '.join(SEARCH_SAMPLERS)}, got {search!r}")
    family = make_family(config.scenario.family, config.scenario.truth, num_samples=config.scenario.samples)
    objectives = parse(objective, family.metric_names + ("human_used",))
    space = parse_space(default_space(config) if space is None else space)
    fixed = constraints_of(config, space)
    seeds, seed = config.run.seeds, config.run.seed
    started = time.perf_counter()
    pareto, extra = None, {}
    if method == "gradient":
        if len(objectives) > 1:
            raise ConfigError("method gradient takes one objective; use method optuna with search nsga for several")
        if start == "best":
            config = gradient_start(config, objectives[0], space, seeds=seeds, seed=seed, constraints=fixed)
        result = optimize_gradient(config, objectives[0], space, steps=steps, learning_rate=learning_rate,
                                   seeds=seeds, seed=seed, optimizer=optimizer)
        study_name = None
        extra["saturated"] = saturated_keys(result.config, space)
    else:
        study_name = study or default_study_name(config, objective, space, method, fixed)
        result = optimize_search(config, objectives, space, trials=trials, storage=storage, constraints=fixed,
                                 study_name=study_name, seeds=seeds, seed=seed, sampler=search,
                                 timeout=timeout, progress=progress, workers=workers,
                                 refine_steps=refine_steps if method == "hybrid" else 0,
                                 refine_lr=learning_rate, batch=batch)
        if len(objectives) > 1:  # the Pareto front of the study (quality vs cost or vs diversity)
            pareto = pareto_front(config, objectives, result.study.best_trials, eval_seeds=eval_seeds, seed=seed)
    elapsed = time.perf_counter() - started
    report = build_report(result.config, objectives[0], eval_seeds=eval_seeds, seed=seed, constraints=fixed,
                          start=result.start if method == "gradient" else None)
    if study_name is not None:  # what `mixopt recommend` reads back without recomputing
        store_report(result.study, objectives[0], report)
    return {**report, "source": answer_source(report), "method": method, "study": study_name,
            "simulator_evaluations": result.evaluations, "seconds": elapsed,
            **({"pareto": pareto} if pareto is not None else {}), **extra}



PARETO_POINTS = 12  # the front's points re-evaluated (evenly spread along the first objective)


def pareto_front(config: Config, objectives: list, trials: list, *, eval_seeds: int, seed: int) -> list[dict]:
    """The study's Pareto front re-evaluated on the same fresh seeds: per point its policy in words and
    every objective's mean with a 95% CI (the search's own values kept as ``search_values``)."""
    import numpy as np

    from mixopt.describe import describe
    from mixopt.optimizers.evaluate import _estimate, paired_values
    from mixopt.optimizers.space import policy_changes, with_policy

    trials = sorted(trials, key=lambda t: t.values[0])
    if len(trials) > PARETO_POINTS:
        trials = [trials[i] for i in np.linspace(0, len(trials) - 1, PARETO_POINTS).round().astype(int)]
    configs = {f"point-{i}": with_policy(config, **policy_changes(t.user_attrs["policy"])) for i, t in enumerate(trials)}
    values, used = paired_values(configs, objectives[0], seeds=eval_seeds, seed=seed)
    front = []
    for (name, point), trial in zip(configs.items(), trials):
        metrics = values[name]
        entry = {"policy": trial.user_attrs["policy"], "description": describe(point),
                 "search_values": dict(zip([o.name for o in objectives], trial.values)), "eval_seeds": used}
        if isinstance(metrics, Exception):
            entry["error"] = str(metrics)
        else:
            entry["values"] = {o.name: _estimate(metrics, o).summary() for o in objectives}
        front.append(entry)
    return front
