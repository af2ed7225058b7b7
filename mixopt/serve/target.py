"""``mixopt recommend --target METRIC<=VALUE``: how much human data must we keep? (issue 11, item 4)

The answer is the least total human budget (generation 0's M samples included) at which the best
budget-matched heuristic meets the target with its 95% CI (``ci_high <= VALUE`` for ``<=``, ``ci_low >=
VALUE`` for ``>=``), found by bisection over whole samples between M and M (T + 1), every budget on
the same fresh seeds (common random numbers). The heuristics are what a budget buys the simple ways
(``baselines.budget_matched``, keeping the policy keys the user fixed); the best of them at the answer's budget is the policy, with its
per-generation spend. The bisection assumes the best heuristic does not get worse with more budget
(each can leave the extra unspent only by design, so this is checked on the evaluated points: a
budget that meets the target above one that does not is what bisection needs; a violation is said in
``monotone``). ``curve`` (``budget_curve``) gives every heuristic's score per budget: the
budget-quality curve, for a table or a figure.
"""
import dataclasses
import math
import re
from typing import NamedTuple

import numpy as np

from mixopt.config import Config
from mixopt.errors import ConfigError
from mixopt.objectives import Objective, parse

_TARGET = re.compile(r"^\s*([\w:]+)\s*(<=|>=)\s*(\S+)\s*$")


class Target(NamedTuple):
    """A target on an objective: ``objective op value``."""

    objective: Objective
    op: str
    value: float

    def met(self, row: dict) -> bool:
        return row["ci_high"] <= self.value if self.op == "<=" else row["ci_low"] >= self.value

    def to_dict(self) -> dict:
        return {"metric": self.objective.name, "op": self.op, "value": self.value}


def parse_target(text: str, metric_names: tuple[str, ...] | None = None) -> Target:
    """``"final:kl<=0.006"`` (``kl<=0.006`` means ``final:kl``); the direction must fit the metric's."""
    match = _TARGET.match(text or "")
    if not match:
        raise ConfigError(f"target {text!r} must look like METRIC<=VALUE or METRIC>=VALUE, e.g. final:kl<=0.01")
    name, op, value = match.groups()
    objective = parse(name if ":" in name else f"final:{name}", metric_names)[0]
    if (op == "<=") != (objective.direction == "minimize"):
        better = "lower" if objective.direction == "minimize" else "higher"
        raise ConfigError(f"target {text!r}: {objective.metric} is better {better}, so the target is "
                          f"{objective.name}{'<=' if better == 'lower' else '>='}VALUE")
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"target value {value!r} is not a number") from None
    if not math.isfinite(number):
        raise ConfigError(f"target value must be finite, got {value!r}")
    return Target(objective, op, number)


def at_budget(config: Config, budget: float) -> Config:
    """``config`` with another total human budget."""
    return dataclasses.replace(config, scenario=dataclasses.replace(config.scenario, human_budget=float(budget)))


def _evaluate(config: Config, objective: Objective, budget: float, *, seeds: int, seed: int, runners: dict,
              fixed: dict) -> list:
    """Every budget-matched heuristic at ``budget`` on the same fresh seeds: rows of name, mean, CI,
    human_used and the per-generation spend."""
    from mixopt.describe import effective_human
    from mixopt.optimizers.evaluate import _estimate, paired_values
    from mixopt.optimizers.baselines import baseline_configs, budget_matched

    here = at_budget(config, budget)  # the heuristics keep every policy key the user fixed (``fixed``)
    configs = {n: c for n, c in baseline_configs(here, fixed).items() if budget_matched(n)}
    values, _ = paired_values(configs, objective, seeds=seeds, seed=seed, runners=runners)
    rows = []
    for name, metrics in values.items():
        if isinstance(metrics, Exception):
            continue
        estimate = _estimate(metrics, objective)
        rows.append({"human_budget": float(budget), "strategy": name, **estimate.summary(),
                     "per_generation": effective_human(configs[name])})
    return rows


def _best(rows: list, objective: Objective) -> dict:
    pick = min if objective.direction == "minimize" else max
    return pick(rows, key=lambda row: row["mean"])


def least_budget(config: Config, target: Target, *, seeds: int = 1000, seed: int = 0, progress=None) -> dict:
    """The least human budget whose best heuristic meets ``target`` (module docstring), with its policy
    and the evaluated budget-quality points (``curve``)."""
    from mixopt.optimizers.baselines import baseline_configs
    from mixopt.optimizers.constraints import constraints
    from mixopt.optimizers.space import policy_dict

    scenario = config.scenario
    low, high = scenario.samples, scenario.samples * (scenario.generations + 1)
    runners: dict = {}
    seen: dict[int, list] = {}
    fixed = constraints(config)

    def rows_at(budget: int) -> list:
        if budget not in seen:
            seen[budget] = _evaluate(config, target.objective, budget, seeds=seeds, seed=seed, runners=runners,
                                     fixed=fixed)
            if progress is not None:
                progress(f"budget {budget}: best {_best(seen[budget], target.objective)['mean']:.4g}")
        return seen[budget]

    def meets(budget: int) -> bool:
        return target.met(_best(rows_at(budget), target.objective))

    curve = lambda: [{k: v for k, v in r.items() if k != "per_generation"}  # noqa: E731
                     for b in sorted(seen) for r in seen[b]]
    if not meets(high):
        best = _best(rows_at(high), target.objective)
        return {"target": target.to_dict(), "met": False, "human_budget": None, "curve": curve(),
                "reason": f"even every sample human ({high}) reaches only {best['mean']:.4g} "
                          f"[{best['ci_low']:.4g}, {best['ci_high']:.4g}] with {best['strategy']}"}
    if meets(low):
        high = low
    while high - low > 1:  # invariant: high meets the target, low does not
        middle = (low + high) // 2
        if meets(middle):
            high = middle
        else:
            low = middle
    best = _best(rows_at(high), target.objective)
    answer = baseline_configs(at_budget(config, high), fixed)[best["strategy"]]
    met = sorted(b for b in seen if meets(b))
    monotone = all(b >= high for b in met)
    from mixopt.describe import describe

    return {"target": target.to_dict(), "met": True, "human_budget": high,
            "human_per_generation": best["per_generation"], "fresh_after_generation_0": high - scenario.samples,
            "policy": policy_dict(answer.policy), "description": describe(answer), "strategy": best["strategy"],
            "objective": {"metric": target.objective.name, "direction": target.objective.direction,
                          "mean": best["mean"], "ci_low": best["ci_low"], "ci_high": best["ci_high"],
                          "eval_seeds": seeds},
            "human_used": best["human_used"], "scenario": at_budget(config, high).to_dict()["scenario"],
            "source": "target", "monotone": monotone, "curve": curve(), "constraints": fixed}


def budget_curve(config: Config, objective: Objective, budgets, *, seeds: int = 1000, seed: int = 0) -> "pd.DataFrame":
    """Every budget-matched heuristic's score at each total budget (a budget-quality curve, as a
    table: human_budget, strategy, mean, ci_low, ci_high, human_used), on the same fresh seeds."""
    import pandas as pd

    from mixopt.optimizers.constraints import constraints

    runners, fixed = {}, constraints(config)
    rows = [r for b in budgets for r in _evaluate(config, objective, b, seeds=seeds, seed=seed, runners=runners,
                                                  fixed=fixed)]
    return pd.DataFrame(rows).drop(columns="per_generation")


def grid(config: Config, points: int = 6) -> list[int]:
    """Budgets from M (generation 0 alone) to M (T + 1) (every sample human), evenly in fresh samples."""
    scenario = config.scenario
    return sorted({int(round(v)) for v in np.linspace(scenario.samples, scenario.samples * (scenario.generations + 1),
                                                       points)})
