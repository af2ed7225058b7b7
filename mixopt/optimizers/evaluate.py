"""Re-evaluation of a policy under the exact simulation semantic, with fresh seeds."""
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


def compare(config: Config, objective: Objective, baselines: dict, *, seeds: int, seed: int) -> tuple[Estimate, list]:
    """The policy and each baseline on the same fresh seeds; margins with paired 95% CIs.

    ``margin`` is how much better the policy is than the baseline (positive = better), in the
    objective's units, whichever its direction.
    """
    mine = evaluate(config, objective, seeds=seeds, seed=seed)
    sign = 1.0 if objective.direction == "minimize" else -1.0
    rows = []
    for name, baseline_config in baselines.items():
        try:
            theirs = evaluate(baseline_config, objective, seeds=seeds, seed=seed)
        except SimulationError as err:
            rows.append({"name": name, "error": str(err)})
            continue
        diff = sign * (theirs.per_seed - mine.per_seed)
        half = 1.96 * diff.std(ddof=1) / np.sqrt(seeds)
        rows.append({"name": name, "mean": theirs.mean, "ci_low": theirs.ci_low, "ci_high": theirs.ci_high,
                     "human_used": theirs.human_used, "margin": float(diff.mean()),
                     "margin_ci_low": float(diff.mean() - half), "margin_ci_high": float(diff.mean() + half),
                     "trajectory": theirs.trajectory})
    return mine, rows


def build_report(config: Config, objective: Objective, *, eval_seeds: int, seed: int,
                 start: Config | None = None) -> dict:
    """The policy of ``config`` and every baseline on the same fresh seeds (imports JAX).

    ``start``: the policy an optimiser started from, compared on the same seeds like a baseline and
    reported apart as ``start`` (with the paired margin: how much the optimiser improved on it).
    """
    others = baseline_configs(config)
    if start is not None:
        others["start"] = start
    estimate, baselines = compare(config, objective, others, seeds=eval_seeds, seed=seed)
    extra = {}
    if start is not None:  # compare() keeps the order of ``others``: the start is its last row
        extra = {"start": {**baselines.pop(), "policy": policy_dict(start.policy)}}
    return {**extra, "scenario": config.to_dict()["scenario"], "policy": policy_dict(config.policy),
            "description": describe(config), "objective": {
                "metric": objective.name, "direction": objective.direction, "mean": estimate.mean,
                "ci_low": estimate.ci_low, "ci_high": estimate.ci_high, "eval_seeds": eval_seeds},
            "human_used": estimate.human_used, "trajectory": estimate.trajectory, "baselines": baselines}
