"""The user's constraints (issue 26): every policy key they set (``Config.fixed``) that the optimised
space leaves alone; and the space ``recommend``, the atlas and the benchmark search, less what the
constraints fix. No JAX at import.
"""
import dataclasses

from mixopt.config import Config
from mixopt.optimizers.space import FRACTION_KEYS

# The space recommend, the atlas and the benchmark search (less the keys the user fixed:
# ``recommend_space``): the budget's free allocation over generations, so late and bursty plans are
# reachable, and the retention rule (with the window's length and the age rule's gamma). The
# budget-matched heuristics (front-load, uniform, back-load,
# fixed 10%) are its first trials, so a time-bounded search starts from the best simple plans.
RECOMMEND_SPACE = ("human_allocation", "retention", "window", "age_weight")


def constraints(config: Config, space: tuple[str, ...] = ()) -> dict:
    """The user's constraints: every policy key they set (``Config.fixed``) that ``space`` does not
    optimise, with its value as a ``[policy]`` table spells it. A fraction key in ``space`` frees
    ``human_fraction`` (each sets lambda_t). Heuristics, fallbacks, study identity and the atlas
    lookup all read this one value."""
    freed = set(space) | ({"human_fraction"} if set(space) & set(FRACTION_KEYS) else set())
    values = dataclasses.asdict(config.policy)
    return {key: (list(v) if isinstance(v, tuple) else v) for key in sorted(config.fixed) if key not in freed
            for v in [values[key]]}


def recommend_space(fixed: dict) -> tuple[str, ...]:
    """``RECOMMEND_SPACE`` less what the constraints ``fixed`` decide: a fixed human fraction leaves no
    allocation to search, and the window's length matters only where the retention may be a window."""
    keys = [k for k in RECOMMEND_SPACE if k not in fixed]
    if "human_fraction" in fixed:
        keys = [k for k in keys if k not in FRACTION_KEYS]
    for key, rule in (("window", "window"), ("age_weight", "age")):  # a length or a gamma of a rule not kept
        if fixed.get("retention", rule) != rule:
            keys = [k for k in keys if k != key]
    return tuple(keys)
