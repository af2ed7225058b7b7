"""The human-data supply: how many real human samples each generation's batch holds (DESIGN.md §2).

Of a batch of M samples, round(lambda_t M) slots are bought as human. With ``fresh`` data they are new
draws from the truth, capped by what is left of the budget; under contamination c_t, round(c_t n_h)
of them are in fact the current model's samples (the polluted web), and only the real ones consume
the budget. With the ``pool`` source they are drawn again from generation 0's human samples and
consume nothing. The rule is written once, over an array namespace ``xp``: ``jax.numpy`` in the
generation loop, ``numpy`` in ``per_generation`` (what the plain-words description reports), so
the words and the simulated ``human_used`` cannot disagree.
"""
from typing import Callable, NamedTuple

import numpy as np


def rounder(relaxed: bool, xp=np) -> Callable:
    """Whole counts (round half to even), or the identity on the relaxed (differentiable) path."""
    return (lambda x: x) if relaxed else xp.round


class Supply(NamedTuple):
    """``counts(fraction, contamination, human_left, flow_left, generation) -> (num_real, num_contam)``:
    the real human samples and the contaminated ones among the slots bought as human, capped by what is
    left of the budget and of what the flow has brought (``flow_left``); the pool gives nothing from
    generation ``shelf_life`` on; ``consumed(num_real)``: the fresh human samples that spends (0 from
    the pool)."""

    counts: Callable
    consumed: Callable


def supply(num_samples: int, *, pool: bool, contaminated: bool, relaxed: bool = False, xp=np,
           shelf_life: int | None = None) -> Supply:
    """The supply rule for batches of ``num_samples``; ``contaminated`` False ignores contamination."""
    rounded = rounder(relaxed, xp)

    def counts(fraction, contamination, human_left, flow_left=np.inf, generation=1):
        wanted = rounded(fraction * num_samples)
        if pool:  # generation 0's samples expire at generation L
            return wanted * (1.0 if shelf_life is None else generation < shelf_life), 0.0 * wanted
        num_contam = rounded(contamination * wanted) if contaminated else 0.0 * wanted
        return xp.minimum(wanted - num_contam, xp.maximum(xp.minimum(human_left, flow_left), 0.0)), num_contam

    def consumed(num_real):
        return 0.0 * num_real if pool else num_real

    return Supply(counts, consumed)


def per_generation(fractions, contamination, *, human_budget: float, num_samples: int, pool: bool,
                   flow: float = np.inf, shelf_life: int | None = None) -> list[int]:
    """Real human samples in each generation 1..T's batch (generation 0 spends ``num_samples``), under a
    flow of ``flow`` fresh samples a generation and, for the pool, generation 0's samples' shelf life:
    the generation loop's rule (``generation.simulator``'s step), in numpy."""
    rule = supply(num_samples, pool=pool, contaminated=True, shelf_life=shelf_life)
    left, bought = human_budget - num_samples, 0.0
    out = []
    for t, (fraction, c) in enumerate(zip(fractions, contamination), start=1):
        num_real, _ = rule.counts(np.float64(fraction), np.float64(c), np.float64(left), flow * t - bought, t)
        spent = rule.consumed(num_real)
        left, bought = left - spent, bought + spent
        out.append(int(num_real))
    return out
