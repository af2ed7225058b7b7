"""Re-evaluation of a policy under the exact simulation semantic, with fresh seeds."""
import time
from typing import NamedTuple

import numpy as np

from mixopt import montecarlo
from mixopt.config import Config
from mixopt.errors import SimulationError
from mixopt.describe import describe
from mixopt.objectives import Objective
from mixopt.optimizers.space import baseline_configs, policy_dict


class Estimate(NamedTuple):
    mean: float
    ci_low: float
    ci_high: float
    human_used: float
    per_seed: np.ndarray
    trajectory: list  # records {generation, mean, ci_low, ci_high} of the objective's metric

    def summary(self) -> dict:
        return {"mean": self.mean, "ci_low": self.ci_low, "ci_high": self.ci_high, "human_used": self.human_used}


def trajectory(values: np.ndarray) -> list[dict]:
    """Per-generation mean and 95% normal CI of a (seeds, T + 1) metric."""
    means = values.mean(axis=0)
    half = 1.96 * values.std(axis=0, ddof=1) / np.sqrt(values.shape[0])
    return [{"generation": t, "mean": float(m), "ci_low": float(m - h), "ci_high": float(m + h)}
            for t, (m, h) in enumerate(zip(means, half))]


def evaluate(config: Config, objective: Objective, *, seeds: int, seed: int, stream: int = 1) -> Estimate:
    """Objective over ``seeds`` fresh Monte-Carlo seeds (key stream ``stream``, not the one the
    optimiser searched on); 95% normal CI (1.96 standard errors)."""
    metrics = montecarlo.per_seed_metrics(config, montecarlo.seed_keys(seed, seeds, stream=stream))
    values = np.asarray(objective.value(metrics))
    half = 1.96 * values.std(ddof=1) / np.sqrt(seeds)
    return Estimate(float(values.mean()), float(values.mean() - half), float(values.mean() + half),
                    float(metrics["human_used"][:, -1].mean()), values, trajectory(metrics[objective.metric]))


def paired_values(configs: dict, objective: Objective, *, seeds: int, seed: int, chunk: int | None = None,
                  runners: dict | None = None, deadline: float | None = None, min_seeds: int = 0) -> tuple[dict, int]:
    """Per-seed metrics of every config on the same fresh seeds (stream 1), ``chunk`` seeds at a time.

    Every config sees the same keys, so differences are paired. With a ``deadline``
    (``time.perf_counter()`` value) the evaluation stops after the round of chunks that crosses it
    (and has at least ``min_seeds``): a time-budgeted answer on fewer seeds. ``runners``: compiled programs by
    ``montecarlo.structure`` (e.g. the search's, for ``chunk`` = its seeds) are reused. Returns
    ({name: metrics or SimulationError}, seeds used).
    """
    keys = montecarlo.seed_keys(seed, seeds, stream=1)
    chunk = min(chunk or seeds, seeds)
    runners = {} if runners is None else runners
    parts: dict = {name: [] for name in configs}
    errors: dict = {}
    used = 0
    while used < seeds:
        block = keys[used:used + chunk]  # the last one may be short: its own (smaller) program
        for name, config in configs.items():
            if name in errors:
                continue
            structure = montecarlo.structure(config)
            if structure not in runners:
                runners[structure] = montecarlo.runner(config)
            try:
                parts[name].append(montecarlo.per_seed_metrics(config, block, runners[structure]))
            except SimulationError as err:
                errors[name] = err
        used += len(block)
        if deadline is not None and time.perf_counter() > deadline and used >= min_seeds:
            break
    out = {name: errors.get(name) or {m: np.concatenate([p[m] for p in parts[name]]) for m in parts[name][0]}
           for name in configs}
    return out, used


def _estimate(metrics: dict, objective: Objective) -> Estimate:
    values = np.asarray(objective.value(metrics))
    half = 1.96 * values.std(ddof=1) / np.sqrt(len(values))
    return Estimate(float(values.mean()), float(values.mean() - half), float(values.mean() + half),
                    float(metrics["human_used"][:, -1].mean()), values, trajectory(metrics[objective.metric]))


def compare(config: Config, objective: Objective, baselines: dict, *, seeds: int, seed: int, chunk: int | None = None,
            runners: dict | None = None, deadline: float | None = None, min_seeds: int = 0) -> tuple[Estimate, list]:
    """The policy and each baseline on the same fresh seeds; margins with paired 95% CIs.

    ``margin`` is how much better the policy is than the baseline (positive = better), in the
    objective's units, whichever its direction. ``chunk``, ``runners``, ``deadline``, ``min_seeds``: as for
    ``paired_values`` (the estimate's per_seed says how many seeds were used).
    """
    values, _ = paired_values({"__policy__": config, **baselines}, objective, seeds=seeds, seed=seed, chunk=chunk,
                              runners=runners, deadline=deadline, min_seeds=min_seeds)
    if isinstance(values["__policy__"], SimulationError):
        raise values["__policy__"]
    mine = _estimate(values.pop("__policy__"), objective)
    sign = 1.0 if objective.direction == "minimize" else -1.0
    rows = []
    for name, metrics in values.items():
        if isinstance(metrics, SimulationError):
            rows.append({"name": name, "error": str(metrics)})
            continue
        theirs = _estimate(metrics, objective)
        diff = sign * (theirs.per_seed - mine.per_seed)
        half = 1.96 * diff.std(ddof=1) / np.sqrt(len(diff))
        rows.append({"name": name, "mean": theirs.mean, "ci_low": theirs.ci_low, "ci_high": theirs.ci_high,
                     "human_used": theirs.human_used, "margin": float(diff.mean()),
                     "margin_ci_low": float(diff.mean() - half), "margin_ci_high": float(diff.mean() + half),
                     "trajectory": theirs.trajectory})
    return mine, rows


def build_report(config: Config, objective: Objective, *, eval_seeds: int, seed: int,
                 start: Config | None = None, chunk: int | None = None, runners: dict | None = None,
                 deadline: float | None = None, min_seeds: int = 0) -> dict:
    """The policy of ``config`` and every baseline on the same fresh seeds (imports JAX).

    ``start``: the policy an optimiser started from, compared on the same seeds like a baseline and
    reported apart as ``start`` (with the paired margin: how much the optimiser improved on it).
    ``chunk``, ``runners``, ``deadline``, ``min_seeds``: a time-budgeted evaluation (``paired_values``); the report's
    ``eval_seeds`` is the number of seeds actually used.
    """
    others = baseline_configs(config)
    if start is not None:
        others["start"] = start
    estimate, baselines = compare(config, objective, others, seeds=eval_seeds, seed=seed, chunk=chunk,
                                  runners=runners, deadline=deadline, min_seeds=min_seeds)
    eval_seeds = len(estimate.per_seed)
    extra = {}
    if start is not None:  # compare() keeps the order of ``others``: the start is its last row
        extra = {"start": {**baselines.pop(), "policy": policy_dict(start.policy)}}
    return {**extra, "scenario": config.to_dict()["scenario"], "policy": policy_dict(config.policy),
            "description": describe(config), "objective": {
                "metric": objective.name, "direction": objective.direction, "mean": estimate.mean,
                "ci_low": estimate.ci_low, "ci_high": estimate.ci_high, "eval_seeds": eval_seeds},
            "human_used": estimate.human_used, "trajectory": estimate.trajectory, "baselines": baselines}
