"""The baselines every answer is compared with (DESIGN.md section 4, issue 11): the zero-budget
strategies and the budget-matched ones that spend the scenario's human budget the simple ways, as
policies (``baselines``, ``baseline_configs``) and as starting trials of a search (``baseline_params``).
No JAX at import.
"""
from typing import NamedTuple

import numpy as np

from mixopt.config import Config, Policy
from mixopt.optimizers.space import KEYS, with_policy
from mixopt.policies.schedules import allocation_caps, within_flow


# The strategies every optimised policy is compared with (DESIGN.md section 4, issues 11 and 26). None
# of them curates or filters (``_PLAIN``): they are what a practitioner does without those tools, and
# subsample retention could not combine with either. The zero-budget ones buy no fresh human data
# after generation 0 (``keep-10%-original`` reuses generation 0's samples); the budget-matched ones
# spend the scenario's human budget the simple ways (``RULES``, ``spending``), so a margin against
# them measures using the budget well, not using more of it. Every rule is crossed with the
# retention rules the user left free (``DEFAULT_RETENTIONS``), or with the one they fixed: a
# constraint of the user's pipeline (``constraints``) is kept by every baseline, so an answer is
# compared with, and falls back to, only what the user could do.
_PLAIN = dict(curation_fraction=1.0, provenance_filter=False, human_weight=None, temperature=None,
              age_weight=Policy().age_weight)  # a heuristic does not tune the age rule's gamma either
ZERO_BUDGET = {
    "replace": dict(retention="replace", human_fraction=0.0, human_source="fresh"),
    "accumulate": dict(retention="accumulate", human_fraction=0.0, human_source="fresh"),
    "accumulate-subsample": dict(retention="subsample", human_fraction=0.0, human_source="fresh"),
    "keep-10%-original": dict(retention="replace", human_fraction=0.1, human_source="pool"),
}
RULES = ("uniform", "front-load", "back-load", "fixed-10%-fresh")  # how a budget is spent over 1..T
DEFAULT_RETENTIONS = ("replace", "accumulate")  # the budget-matched ones' retention where it is free
BUDGET_MATCHED = tuple(f"{rule}-{retention}" for retention in DEFAULT_RETENTIONS for rule in RULES)
AS_SET = "as-set"  # the spending "rule" where the user fixed the human fraction: theirs
_NO_HUMAN = {"replace": "replace", "accumulate": "accumulate", "subsample": "accumulate-subsample", "window": "window",
             "age": "age"}
DEFAULT_SHARE = 0.1  # an infinite budget: the budget-matched baselines spend 10% of every batch (generations 1..T)
FIXED_SHARE = 0.1  # fixed-10%-fresh-*: the fresh share of each batch until the budget runs out


class Baseline(NamedTuple):
    """A baseline strategy: its policy ``changes``, the constant fraction that spells it in a scalar
    search space (``level``), and whether it spends the scenario's budget (``budget_matched``)."""

    changes: dict
    level: float
    budget_matched: bool


def budget_matched(name: str) -> bool:
    """Whether ``name`` is a budget-matched baseline's (of any retention, constrained or not)."""
    return name.startswith(tuple(f"{rule}-" for rule in (*RULES, AS_SET)))


def zero_budget(name: str) -> bool:
    return name in _NO_HUMAN.values() or name.startswith("keep-10%-original")


def spendable(scenario) -> int:
    """Fresh human samples a budget-matched baseline spends in generations 1..T: the budget left after
    generation 0 (at most every slot), or ``DEFAULT_SHARE`` of every batch where the budget is infinite."""
    num, size = scenario.generations, scenario.samples
    flow = np.floor(scenario.human_per_generation * num)  # what a flow of human data brings by generation T
    if np.isinf(scenario.human_budget):
        return int(min(round(DEFAULT_SHARE * size) * num, flow))
    return int(min(scenario.human_budget - size, size * num, flow))


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
    most, _ = allocation_caps(scenario)  # real samples in an all-human batch
    front = np.clip(left - np.concatenate([[0.0], np.cumsum(most)[:-1]]), 0, most)  # all-human until spent
    front = within_flow(front, scenario, most)  # under a flow: all that has appeared, as soon as it has
    back = np.clip(left - np.concatenate([[0.0], np.cumsum(most[::-1])[:-1]]), 0, most[::-1])[::-1]  # from T down
    fixed = FIXED_SHARE if np.isinf(scenario.human_budget) or left > 0 else 0.0  # the budget cap stops it
    full = 1.0 if left > 0 else 0.0
    return {"uniform": (_fractions_for(uniform.astype(np.float64), scenario), left / (num * size)),
            "front-load": (_fractions_for(front.astype(np.float64), scenario), full),
            "back-load": (_fractions_for(back.astype(np.float64), scenario), full),
            "fixed-10%-fresh": (fixed, fixed)}


def baselines(config: Config, constraints: dict | None = None) -> dict[str, Baseline]:
    """Every baseline of ``config``'s scenario that keeps ``constraints`` (the user's fixed policy keys
    and their values, ``space.constraints``), the zero-budget ones first."""
    constraints = constraints or {}
    fixed_retention = constraints.get("retention")
    retentions = (fixed_retention,) if fixed_retention else DEFAULT_RETENTIONS
    rows = {}
    if "human_fraction" not in constraints:
        zero = ZERO_BUDGET if not fixed_retention else {
            _NO_HUMAN[fixed_retention]: dict(ZERO_BUDGET["replace"], retention=fixed_retention),
            "keep-10%-original" + ("" if fixed_retention == "replace" else f"-{fixed_retention}"):
                dict(ZERO_BUDGET["keep-10%-original"], retention=fixed_retention)}
        rows.update({name: Baseline(changes, changes["human_fraction"], False) for name, changes in zero.items()})
        spent = spending(config.scenario)
        for retention in retentions:
            for rule in RULES:
                fraction, level = spent[rule]
                rows[f"{rule}-{retention}"] = Baseline(
                    dict(retention=retention, human_fraction=fraction, human_source="fresh"), level, True)
    else:  # the user's own fractions: only the retention can vary (where it is free)
        level = float(np.mean(config.policy.schedule("human_fraction", config.scenario.generations)))
        for retention in retentions:
            rows[f"{AS_SET}-{retention}"] = Baseline(dict(retention=retention, human_source="fresh"), level, True)
    out = {}
    for name, row in rows.items():
        changes = {**row.changes, **constraints}
        if changes.get("human_source") == "pool" and row.changes.get("human_source") == "fresh":
            name += "-pool"
        out[name] = row._replace(changes=changes)
    return out


def baseline_configs(config: Config, constraints: dict | None = None) -> dict[str, Config]:
    """Each baseline (``baselines``) as a full config of ``config``'s scenario."""
    return {name: with_policy(config, **{**_PLAIN, **row.changes})
            for name, row in baselines(config, constraints).items()}


def outside_constraints(config: Config, constraints: dict, kept: dict) -> dict[str, Config]:
    """The budget-matched baselines of the unconstrained set whose policy none of ``kept`` (the
    constrained ones) has: what the pipeline could do if it dropped its constraints (none without)."""
    if not constraints:
        return {}
    spelled = [c.policy for c in kept.values()]
    return {name: c for name, c in baseline_configs(config).items()
            if budget_matched(name) and c.policy not in spelled}


def baseline_params(config: Config, space: tuple[str, ...], constraints: dict | None = None) -> list[dict]:
    """Baselines (those keeping ``constraints``) in the search space's parameters (where the space can
    express them at all)."""
    out = []  # the budget-matched ones first, front-loading and accumulating first (the atlas's searches
    # found those best across its grid): a time-bounded search may not get further than the first few
    rows = sorted(baselines(config, constraints).items(), key=lambda item: (
        not item[1].budget_matched, not item[0].startswith("front-load"), "accumulate" not in item[0]))
    for _, row in rows:
        changes = {**_PLAIN, **row.changes, "level": row.level}
        params = {}
        for name in space:
            params.update(KEYS[name].baseline(changes, config))
        if params and params not in out:
            out.append(params)
    return out
