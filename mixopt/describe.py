"""A policy in plain words. The human counts come from ``policies.supply``, the rule the simulation
itself runs, so the words and the simulated ``human_used`` agree (tests/test_policy_conformance.py).
No JAX at import.
"""
from mixopt.config import Config
from mixopt.policies import supply


def effective_human(config: Config) -> list[int]:
    """Real human samples in each generation 1..T's batch: the simulation's own supply rule
    (``policies.supply``): round(lambda_t M) slots, less the contaminated ones, capped by what is
    left of the fresh budget."""
    policy, scenario = config.policy, config.scenario
    return supply.per_generation(policy.schedule("human_fraction", scenario.generations),
                                 scenario.schedule("contamination"), human_budget=scenario.human_budget,
                                 num_samples=scenario.samples, pool=policy.human_source == "pool",
                                 flow=scenario.human_per_generation, shelf_life=scenario.human_shelf_life)


def describe(config: Config) -> str:
    """The policy in plain words, generation by generation, e.g. "generations 1-2: fresh human data only
    (100 a generation); generations 3-10: no fresh human data; 200 fresh human samples in all; train on
    everything gathered so far (accumulate)". The human counts are the effective ones: what the budget
    (and, for fresh data, contamination) leaves of the schedule, so the words agree with the simulated
    ``human_used``."""
    policy, scenario = config.policy, config.scenario
    num = scenario.generations
    counts = effective_human(config)
    runs = []  # [count, first generation, last generation]
    for t, count in enumerate(counts, start=1):
        if runs and runs[-1][0] == count:
            runs[-1][2] = t
        else:
            runs.append([count, t, t])
    fresh = policy.human_source == "fresh"
    spans = [f"{_span(a, b)}: {_batch(n, scenario.samples, fresh)}" for n, a, b in runs]
    if len(spans) > 5:  # a long schedule: its first two and last two steps
        spans = spans[:2] + [f"... ({len(spans) - 4} more steps)"] + spans[-2:]
    parts = ["; ".join(spans) if len(runs) > 1 else
             f"every generation: {_batch(runs[0][0], scenario.samples, fresh)}"]
    if fresh and sum(counts):
        parts.append(f"{sum(counts)} fresh human samples in all")
    parts.append(_retention(config))
    if policy.human_weight is not None:
        weights = policy.schedule("human_weight", num)
        parts.append(f"the human samples carry {round(100 * sum(weights) / num)}% of the loss weight")
    if policy.curated:
        q = policy.schedule("curation_fraction", num)
        parts.append(f"curate: keep the top {round(100 * sum(q) / num)}% of the synthetic samples")
    if policy.provenance_filter:
        parts.append("drop the samples the provenance detector flags as synthetic")
    if policy.temperature is not None:
        tau = policy.schedule("temperature", num)
        parts.append(f"synthesise at temperature {sum(tau) / num:.2g}")
    return "; ".join(parts)


def _retention(config: Config) -> str:
    """Which samples each generation trains on, in words (the retention rule under the pipeline's limits)."""
    policy, scenario = config.policy, config.scenario
    kept = {"replace": "its newest batch only", "accumulate": "everything gathered so far",
            "window": f"the batches of the last {policy.window} generations", "subsample": "everything gathered so far",
            "age": f"everything gathered so far, a batch of age a weighing {policy.age_weight:.3g}^a"}[policy.retention]
    name = {"subsample": "accumulate-subsample", "age": "age-weighted"}.get(policy.retention, policy.retention)
    each = " each generation" if policy.retention == "replace" else ""
    size = scenario.train_size or (scenario.samples if policy.retention == "subsample" else None)
    words = (f"train{each} on {kept} ({name})" if size is None else
             f"train{each} on {size} samples drawn from {kept} ({name}"
             f"{', a training set of fixed size' if scenario.train_size else ''})")
    if scenario.human_shelf_life is not None:
        words += f"; a human sample is kept {scenario.human_shelf_life} generation(s) at most (shelf life)"
    return words


def _batch(count: int, size: int, fresh: bool) -> str:
    """One generation's batch in words."""
    if count == 0:
        return "no fresh human data" if fresh else "no human data"
    if count >= size:
        return f"{'fresh ' if fresh else 'original '}human data only ({count} a generation)"
    if fresh:
        return f"{count} fresh human samples a generation ({round(100 * count / size)}%), the rest synthetic"
    return f"{count} of the original human samples re-used a generation ({round(100 * count / size)}%)"


def describe_report(report: dict) -> str:
    """``describe`` of a stored report's policy in its scenario (stored words may predate a rewording)."""
    from mixopt import config as config_mod

    return describe(config_mod.from_dict({"scenario": report["scenario"], "policy": report["policy"]}))


def _span(first: int, last: int) -> str:
    return f"generation {first}" if first == last else f"generations {first}-{last}"
