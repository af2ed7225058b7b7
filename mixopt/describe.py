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
                                 num_samples=scenario.samples, pool=policy.human_source == "pool")


def describe(config: Config) -> str:
    """The policy in plain words, e.g. "keep 18% (generations 1-3) fresh human data, then 8%
    (generations 4-10); accumulate the data of the last 4 generations; curate: keep the top 70% of
    the synthetic samples". Human shares are the effective ones: what the budget (and, for fresh
    data, contamination) leaves of the schedule."""
    policy, scenario = config.policy, config.scenario
    num = scenario.generations
    counts = effective_human(config)
    kind = "fresh human data" if policy.human_source == "fresh" else "of the original human data (re-used)"
    parts = []
    percents = [round(100 * n / scenario.samples) for n in counts]
    runs = []  # (percent, first generation, last generation)
    for t, pct in enumerate(percents, start=1):
        if runs and runs[-1][0] == pct:
            runs[-1][2] = t
        else:
            runs.append([pct, t, t])
    if max(percents) == 0:
        parts.append("use no human data after generation 0")
    elif len(runs) == 1:
        parts.append(f"keep {percents[0]}% {kind} in every generation")
    elif len(runs) <= 4:
        spans = [f"{pct}% ({_span(a, b)})" for pct, a, b in runs]
        parts.append(f"keep {spans[0]} {kind}, then " + ", then ".join(spans[1:]))
    else:
        parts.append(f"keep {kind}: {percents[0]}% in generation 1, {percents[num // 2]}% in generation "
                     f"{num // 2 + 1}, {percents[-1]}% in generation {num}")
    if policy.human_source == "fresh" and sum(counts):
        parts[-1] += f" ({sum(counts)} fresh human samples in all)"
    parts.append({"replace": "train each generation on its newest batch only (replace)",
                  "accumulate": "accumulate: train on every batch so far",
                  "window": f"accumulate the data of the last {policy.window} generations",
                  "subsample": f"accumulate every batch and train on {scenario.samples} samples drawn from them "
                               "(accumulate-subsample)"}[policy.retention])
    if policy.human_weight is not None:
        weights = policy.schedule("human_weight", num)
        parts.append(f"give the human samples {round(100 * sum(weights) / num)}% of the loss weight")
    if policy.curated:
        q = policy.schedule("curation_fraction", num)
        parts.append(f"curate: keep the top {round(100 * sum(q) / num)}% of the synthetic samples")
    if policy.provenance_filter:
        parts.append("drop the samples the provenance detector flags as synthetic")
    if policy.temperature is not None:
        tau = policy.schedule("temperature", num)
        parts.append(f"synthesise at temperature {sum(tau) / num:.2g}")
    return "; ".join(parts)


def describe_report(report: dict) -> str:
    """``describe`` of a stored report's policy in its scenario (stored words may predate a rewording)."""
    from mixopt import config as config_mod

    return describe(config_mod.from_dict({"scenario": report["scenario"], "policy": report["policy"]}))


def _span(first: int, last: int) -> str:
    return f"generation {first}" if first == last else f"generations {first}-{last}"
