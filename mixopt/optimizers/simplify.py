"""Simpler spellings of a policy's human-data schedule (issue 11, item 5).

A searched schedule such as 99%, 98%, 3%, 0.4%, ... with a budget that runs out in generation 2 reads
as noise. ``simplify`` writes the schedule as what happens (the effective human counts per generation,
after the budget cap), snaps shares within ``SNAP`` of 0 or 1 to 0 or 1, and merges neighbouring
generations whose shares differ by at most ``SNAP`` into their mean. Restating the effective counts
changes nothing in the simulation; snapping and merging do, so ``evaluate.build_report`` keeps the
simpler policy only where it is no worse on the evaluation's fresh seeds (paired CI). No JAX at import.
"""
import dataclasses

import numpy as np

from mixopt.config import Config
from mixopt.describe import effective_human

SNAP = 0.05  # shares within 5 points of 0 or 1 snap; neighbours within 5 points merge


def simplify(config: Config) -> tuple[Config, bool] | None:
    """``(simpler config, exact)``, or None where the policy is already as simple. ``exact``: the
    simpler policy only restates the effective counts (the same simulation); otherwise it needs the
    paired check. Contaminated scenarios are left alone (the slots bought are not the counts spent)."""
    scenario, policy = config.scenario, config.policy
    if np.any(np.asarray(scenario.schedule("contamination")) > 0):
        return None
    size = scenario.samples
    counts = np.asarray(effective_human(config), np.float64)
    shares = counts / size
    snapped = np.where(shares >= 1 - SNAP, 1.0, np.where(shares <= SNAP, 0.0, shares))
    runs: list[list[float]] = []
    for share in snapped:
        if runs and abs(share - np.mean(runs[-1])) <= SNAP:
            runs[-1].append(share)
        else:
            runs.append([share])
    merged = np.concatenate([np.full(len(run), np.round(np.mean(run) * size) / size) for run in runs])
    exact = bool(np.all(merged * size == counts))
    fractions = [float(v) for v in (counts / size if exact else merged)]
    new = fractions[0] if len(set(fractions)) == 1 else tuple(fractions)
    if new == policy.human_fraction:
        return None
    return dataclasses.replace(config, policy=dataclasses.replace(policy, human_fraction=new)), exact
