"""Parametric human-fraction schedules: a few numbers -> one lambda_t per generation 1..T.

A free schedule has T parameters; these have one or two, which a search explores far faster and a
user reads at a glance. Each is written in ``jax.numpy`` so the gradient method differentiates
through it, and is evaluated the same way (as floats) by the Optuna search.

- ``linear``: lambda_t runs linearly from ``start`` (t = 1) to ``end`` (t = T).
- ``decay``: lambda_t = start * exp(-rate (t - 1)), rate >= 0: front-loaded human data.
- ``budget``: the fresh human budget left after generation 0, B - M, spent over generations 1..T in
  shares a_t ∝ exp(-rate (t - 1)) (rate > 0 front-loads, < 0 back-loads, 0 spreads evenly):
  lambda_t = min(1, (B - M) a_t / M). The shares sum to 1, so the schedule spends the whole budget
  unless a generation would need more than a full batch.

The free allocation (``human_allocation``) is not a shape at all: the budget's real human samples
over generations 1..T in any profile (early, late, bursts), ``allocate``d by water-filling under the
per-generation caps and moved later where a flow of human data has not yet brought them
(``allocation_fractions``, ``within_flow``).
"""
import math
from typing import Callable, NamedTuple

import numpy as np

from mixopt.config import Config
from mixopt.errors import ConfigError


class Schedule(NamedTuple):
    """``fn(params, config, xp) -> (T,) lambda`` with ``xp`` the array module (``jax.numpy`` on the
    gradient path, ``numpy`` elsewhere, so that a policy is instantiated without importing JAX); ``bounds``: the search range of each parameter, and
    whether the gradient method optimises it as a logit (a fraction) or as it is (a rate)."""

    params: tuple[str, ...]
    bounds: dict  # name -> (low, high)
    fractions: tuple[str, ...]  # the params that are fractions in [0, 1]
    fn: Callable


def _steps(config: Config, xp):
    return xp.arange(config.scenario.generations, dtype=float)  # t - 1 = 0..T-1


def _linear(p, config, xp=np):
    t = _steps(config, xp)
    span = max(config.scenario.generations - 1, 1)
    return p["start"] + (p["end"] - p["start"]) * t / span


def _decay(p, config, xp=np):
    return p["start"] * xp.exp(-p["rate"] * _steps(config, xp))


def _budget(p, config, xp=np):
    scenario = config.scenario
    if math.isinf(scenario.human_budget):
        raise ConfigError("the budget schedule spends a finite scenario.human_budget; set one, or use "
                          "human_fraction_decay")
    shares = xp.exp(-p["rate"] * _steps(config, xp))
    shares = shares / xp.sum(shares)
    return xp.minimum(1.0, (scenario.human_budget - scenario.samples) * shares / scenario.samples)


SCHEDULES = {
    "human_fraction_linear": Schedule(("start", "end"), {"start": (0.0, 1.0), "end": (0.0, 1.0)},
                                      ("start", "end"), _linear),
    "human_fraction_decay": Schedule(("start", "rate"), {"start": (0.0, 1.0), "rate": (0.0, 2.0)},
                                     ("start",), _decay),
    "human_fraction_budget": Schedule(("rate",), {"rate": (-1.0, 3.0)}, (), _budget),
}


def schedule_values(name: str, params: dict, config: Config) -> list[float]:
    """The schedule as plain floats (one per generation 1..T), clipped into [0, 1]."""
    values = np.clip(SCHEDULES[name].fn({k: float(v) for k, v in params.items()}, config, np), 0.0, 1.0)
    return [round(float(v), 6) for v in values]


def allocation_caps(scenario, xp=np):
    """Real human samples an all-human batch of generation 1..T holds (less its contaminated ones),
    and the most the allocation can spend in all: the budget left after generation 0, at most their
    sum and what the flow (``human_per_generation`` F) has brought by generation T, F T."""
    contamination = xp.asarray(scenario.schedule("contamination"), dtype=float)
    caps = scenario.samples - xp.round(contamination * scenario.samples)
    left = math.inf if math.isinf(scenario.human_budget) else scenario.human_budget - scenario.samples
    left = min(left, scenario.human_per_generation * scenario.generations)
    return caps, xp.minimum(left, xp.sum(caps))


def within_flow(counts, scenario, caps, xp=np):
    """``counts`` moved later where the flow has not yet brought them: the cumulative count by generation
    t becomes min(its own, F t), so what a generation could not buy is bought as soon as it can (the
    total is kept when it is at most F T); then each generation's cap. Any plan within the caps maps
    to itself, so the allocation still reaches every plan the flow allows."""
    flow = scenario.human_per_generation
    if math.isinf(flow):
        return counts
    reached = xp.minimum(xp.cumsum(counts), flow * xp.arange(1, scenario.generations + 1, dtype=float))
    return xp.minimum(caps, reached - xp.concatenate([xp.zeros(1), reached[:-1]]))


def allocate(shares, total, caps, xp=np):
    """Water-filling: n_t = min(cap_t, tau share_t) with sum n_t = min(total, sum cap_t).

    Each round hands what is left of ``total`` to the generations below their cap, in proportion to
    their shares; a generation that fills is capped and its excess goes round again, so after T
    rounds every generation is full or holds tau share_t. Written over ``xp`` (differentiable in
    ``jax.numpy``: the caps are where the gradient of a full generation vanishes).
    """
    def fill(_, n):
        free = (n < caps - 1e-9).astype(n.dtype)
        rest = xp.maximum(total - xp.sum(n), 0.0)
        weights = shares * free
        return xp.minimum(caps, n + rest * weights / xp.maximum(xp.sum(weights), 1e-12))

    n = xp.zeros_like(xp.asarray(shares, dtype=float) * 1.0)
    if xp is np:
        for _ in range(len(n)):
            n = fill(None, n)
        return n
    import jax

    return jax.lax.fori_loop(0, n.shape[0], fill, n)


def allocation_fractions(shares, spend, scenario, xp=np):
    """lambda_t that buy ``allocate``'s real counts: ``spend`` (in [0, 1]) of what can be spent,
    split by ``shares`` (summing to 1); under contamination c_t, n_t / (1 - c_t) slots are bought."""
    caps, most = allocation_caps(scenario, xp)
    counts = within_flow(allocate(shares, spend * most, caps, xp), scenario, caps, xp)
    contamination = xp.asarray(scenario.schedule("contamination"), dtype=float)
    return xp.clip(counts / xp.maximum((1.0 - contamination) * scenario.samples, 1e-9), 0.0, 1.0)
