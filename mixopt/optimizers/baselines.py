"""The baselines every answer is compared with (DESIGN.md section 4, issue 11): the zero-budget
strategies and the budget-matched ones that spend the scenario's human budget the simple ways, as
policies (``baselines``, ``baseline_configs``) and as starting trials of a search (``baseline_params``).
No JAX at import.
"""
from typing import NamedTuple

import numpy as np

from mixopt.config import Config
from mixopt.optimizers.space import KEYS, with_policy


# The strategies every optimised policy is compared with (DESIGN.md section 4, issue 11). None of
# them curates or filters (``_PLAIN``): they are what a practitioner does without those tools, and
# subsample retention could not combine with either. The zero-budget ones buy no fresh human data
# after generation 0 (``keep-10%-original`` reuses generation 0's samples); the budget-matched ones
# spend the scenario's human budget the simple ways (``spending``), so a margin against them measures
# using the budget well, not using more of it.
_PLAIN = dict(curation_fraction=1.0, provenance_filter=False, human_weight=None, temperature=None)
ZERO_BUDGET = {
    "replace": dict(retention="replace", human_fraction=0.0, human_source="fresh"),
    "accumulate": dict(retention="accumulate", human_fraction=0.0, human_source="fresh"),
    "accumulate-subsample": dict(retention="subsample", human_fraction=0.0, human_source="fresh"),
    "keep-10%-original": dict(retention="replace", human_fraction=0.1, human_source="pool"),
}
BUDGET_MATCHED = ("uniform-replace", "uniform-accumulate", "front-load-accumulate", "fixed-10%-fresh-replace",
                  "fixed-10%-fresh-accumulate")
DEFAULT_SHARE = 0.1  # an infinite budget: the budget-matched baselines spend 10% of every batch (generations 1..T)
FIXED_SHARE = 0.1  # fixed-10%-fresh-*: the fresh share of each batch until the budget runs out


class Baseline(NamedTuple):
    """A baseline strategy: its policy ``changes``, the constant fraction that spells it in a scalar
    search space (``level``), and whether it spends the scenario's budget (``budget_matched``)."""

    changes: dict
    level: float
    budget_matched: bool


def spendable(scenario) -> int:
    """Fresh human samples a budget-matched baseline spends in generations 1..T: the budget left after
    generation 0 (at most every slot), or ``DEFAULT_SHARE`` of every batch where the budget is infinite."""
    num, size = scenario.generations, scenario.samples
    if np.isinf(scenario.human_budget):
        return int(round(DEFAULT_SHARE * size)) * num
    return int(min(scenario.human_budget - size, size * num))


def _fractions_for(real: np.ndarray, scenario) -> list[float]:
    """Per-generation fractions whose batches hold ``real`` real human samples: under contamination c_t
    only (1 - c_t) of the slots bought as human are real, so round(real / (1 - c_t)) slots are bought."""
    contamination = np.asarray(scenario.schedule("contamination"), np.float64)
    slots = np.minimum(np.round(real / np.maximum(1.0 - contamination, 1e-9)), scenario.samples)
    return [float(v) for v in slots / scenario.samples]


def spending(scenario) -> dict[str, tuple[list[float] | float, float]]:
    """The budget-matched baselines' human fractions (per generation 1..T, or one value) and their level."""
    num, size, left = scenario.generations, scenario.samples, spendable(scenario)
    uniform = np.full(num, left // num) + (np.arange(num) < left % num)  # whole samples, summing to ``left``
    contamination = np.asarray(scenario.schedule("contamination"), np.float64)
    most = size - np.round(contamination * size)  # real samples in an all-human batch
    front = np.clip(left - np.concatenate([[0.0], np.cumsum(most)[:-1]]), 0, most)  # all-human until spent
    fixed = FIXED_SHARE if np.isinf(scenario.human_budget) or left > 0 else 0.0  # the budget cap stops it
    return {"uniform": (_fractions_for(uniform.astype(np.float64), scenario), left / (num * size)),
            "front-load": (_fractions_for(front.astype(np.float64), scenario), 1.0 if left > 0 else 0.0),
            "fixed": (fixed, fixed)}


def baselines(config: Config) -> dict[str, Baseline]:
    """Every baseline of ``config``'s scenario, the zero-budget ones first."""
    out = {name: Baseline(changes, changes["human_fraction"], False) for name, changes in ZERO_BUDGET.items()}
    spent = spending(config.scenario)
    for name in BUDGET_MATCHED:
        rule, _, retention = name.rpartition("-")
        fraction, level = spent.get(rule, spent["fixed"])
        out[name] = Baseline(dict(retention=retention, human_fraction=fraction, human_source="fresh"), level, True)
    return out


def baseline_configs(config: Config) -> dict[str, Config]:
    """Each baseline (``baselines``) as a full config of ``config``'s scenario."""
    return {name: with_policy(config, **row.changes, **_PLAIN) for name, row in baselines(config).items()}


def baseline_params(config: Config, space: tuple[str, ...]) -> list[dict]:
    """Baselines expressed in the search space's parameters (those the space can express at all)."""
    out = []  # the budget-matched ones first: a time-bounded search may not get further
    for row in sorted(baselines(config).values(), key=lambda row: not row.budget_matched):
        changes = {**row.changes, **_PLAIN, "level": row.level}
        params = {}
        for name in space:
            params.update(KEYS[name].baseline(changes, config))
        if params and params not in out:
            out.append(params)
    return out
