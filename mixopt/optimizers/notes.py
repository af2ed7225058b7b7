"""What a report says beside its numbers: what it assumed, and the better heuristic outside the user's
constraints (named, never the answer)."""
import math

from mixopt.config import Config
from mixopt.describe import describe
from mixopt.objectives import Objective
from mixopt.optimizers.space import policy_dict


def assumptions(config: Config) -> list[str]:
    """What the answer assumed that the user did not state, in words (an infinite human budget is the
    default of a scenario, and of a config ``mixopt calibrate`` wrote where nothing measured one)."""
    if math.isinf(config.scenario.human_budget):
        return ["unlimited fresh human data (human_budget = inf): state yours with --human-budget N "
                "(fresh human samples in all, generation 0's M included)"]
    return []


def outside_note(answer, rows: list, configs: dict, objective: Objective, constraints: dict,
                 paired_margin) -> dict | None:
    """The best heuristic outside the constraints, where it beats the answer beyond its paired CI
    (``paired_margin``: evaluate's, passed in so that this floor stays below it)."""
    rows = [r for r in rows if "error" not in r]
    if not rows:
        return None
    pick = min if objective.direction == "minimize" else max
    best = pick(rows, key=lambda r: r["mean"])
    margin = paired_margin(best["per_seed"], answer.per_seed, objective.direction)  # > 0: outside is better
    if not margin["ci_low"] > 0:
        return None
    config = configs[best["name"]]
    policy = policy_dict(config.policy)
    broken = {k: policy.get(k) for k, v in constraints.items() if policy.get(k) != v}
    name = best["name"].removeprefix("outside:")
    what = ", ".join(f"{k} = {v}" for k, v in broken.items())
    return {"name": name, "policy": policy, "description": describe(config), "breaks": broken,
            "mean": best["mean"], "ci_low": best["ci_low"], "ci_high": best["ci_high"], "margin": margin,
            "note": f"if your pipeline could change {what}: {name} reaches {best['mean']:.4g} "
                    f"({margin['mean']:.4g} [{margin['ci_low']:.4g}, {margin['ci_high']:.4g}] better than the answer)"}
