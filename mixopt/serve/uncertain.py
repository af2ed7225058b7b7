"""``mixopt recommend --uncertain KEY=LO:HI``: the policy that does best on average over a range of
scenario keys (3 points per key, all combinations), its evaluation in each variant, and the best
policy for each variant alone."""
import math

from mixopt.config import Config
from mixopt.describe import describe
from mixopt.errors import ConfigError
from mixopt.objectives import parse
from mixopt.store import default_study_name

UNCERTAIN_SCENARIO_KEYS = ("contamination", "human_budget", "detector_tpr", "detector_fpr", "verifier_noise",
                           "samples")  # samples: rounded to an integer (a calibrated M's interval)

UNCERTAIN_POINTS = 3  # lo, middle, hi of each range


def parse_uncertain(specs: list[str], config: Config) -> list[tuple[dict, Config]]:
    """The scenario variants (``{key: value}``, config) of ``KEY=LO:HI`` ranges: 3 points per key,
    all combinations (at most 2 keys)."""
    import itertools

    from mixopt import config as config_mod

    ranges = []
    for spec in specs:
        key, sep, span = spec.partition("=")
        lo, sep2, hi = span.partition(":")
        key = key.strip()
        try:
            lo, hi = float(lo), float(hi)
        except ValueError:
            lo = hi = math.nan
        if not sep or not sep2 or not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
            raise ConfigError(f"uncertain {spec!r} must look like KEY=LO:HI with numbers LO <= HI")
        truth_key = key.removeprefix("truth.")
        if key not in UNCERTAIN_SCENARIO_KEYS and truth_key not in config.scenario.truth and not key.startswith("truth."):
            raise ConfigError(f"uncertain key {key!r} must be one of {', '.join(UNCERTAIN_SCENARIO_KEYS)} "
                              "or a truth key (truth.NAME)")
        ranges.append((key, [lo + (hi - lo) * i / (UNCERTAIN_POINTS - 1) for i in range(UNCERTAIN_POINTS)]))
    if len(ranges) > 2:
        raise ConfigError("uncertain takes at most two keys (3^k scenario variants are simulated per trial)")
    variants = []
    for values in itertools.product(*[v for _, v in ranges]):
        assignment = dict(zip([k for k, _ in ranges], values))
        data = config.to_dict()
        for key, value in assignment.items():
            if key in UNCERTAIN_SCENARIO_KEYS:
                data["scenario"][key] = int(round(value)) if key == "samples" else value
            else:
                truth_key = key.removeprefix("truth.")
                old = config.scenario.truth.get(truth_key)
                data["scenario"]["truth"][truth_key] = int(round(value)) if isinstance(old, int) else value
        variants.append((assignment, config_mod.from_dict(data, fixed=config.fixed)))
    return variants


def recommend_uncertain(config: Config, objective_text: str, specs: list[str], *, storage: str | None = None,
                        time_budget: float = 30.0, eval_seeds: int = 1000, progress: bool = False) -> dict:
    """The policy that minimises the objective averaged over the scenario variants (a bounded
    search), its evaluation in each variant, and the best policy for each variant alone (from the
    same trials, which record every variant's value)."""
    import dataclasses

    import numpy as np

    from mixopt.families import make_family
    from mixopt.optimizers.evaluate import _estimate, compare, paired_margin, paired_values
    from mixopt.optimizers.search import optimize_search
    from mixopt.optimizers.baselines import baseline_configs
    from mixopt.optimizers.space import policy_dict
    from mixopt.optimizers.space import constraints as constraints_of, policy_changes, recommend_space, with_policy
    from mixopt.optimizers.evaluators import RobustEvaluator

    if not time_budget > 0:
        raise ConfigError(f"time_budget must be > 0 seconds, got {time_budget!r}")
    variants = parse_uncertain(specs, config)
    family = make_family(config.scenario.family, config.scenario.truth, num_samples=config.scenario.samples)
    objective = parse(objective_text, family.metric_names + ("human_used",))[0]
    fixed = constraints_of(config)
    space = recommend_space(fixed)
    if not space:
        raise ConfigError(f"every policy key a recommendation chooses is fixed ({', '.join(fixed)}): nothing is "
                          "left to recommend; drop one, or mixopt simulate your policy")
    name = "robust-" + default_study_name(config, f"{objective.name}|{'|'.join(sorted(specs))}", space,
                                          constraints=fixed)
    result = optimize_search(config, [objective], space, trials=10_000, storage=storage, study_name=name,
                             constraints=fixed, seeds=config.run.seeds, seed=config.run.seed, timeout=time_budget,
                             progress=progress, evaluator=RobustEvaluator([objective], [v for _, v in variants],
                                                                          seeds=config.run.seeds, seed=config.run.seed))
    best_policy = result.config.policy
    sign = 1.0 if objective.direction == "minimize" else -1.0
    trials = [t for t in result.study.trials if t.value is not None and "variant_values" in t.user_attrs]
    rows, policy_values, baseline_values = [], [], {}
    for i, (assignment, variant) in enumerate(variants):
        mine = dataclasses.replace(variant, policy=best_policy)
        estimate, baselines = compare(mine, objective, baseline_configs(variant, fixed), seeds=eval_seeds,
                                      seed=config.run.seed)
        policy_values.append(estimate.per_seed)
        for row in baselines:
            if "mean" in row:
                baseline_values.setdefault(row["name"], []).append(row)
        alone = min(trials, key=lambda t: sign * t.user_attrs["variant_values"][i])
        alone_config = with_policy(dataclasses.replace(variant, policy=best_policy),
                                   **policy_changes(alone.user_attrs["policy"]))
        # the per-value best on the same fresh seeds: its score, and what robustness costs here
        here, _ = paired_values({"alone": alone_config}, objective, seeds=eval_seeds, seed=config.run.seed)
        alone_estimate = _estimate(here["alone"], objective)
        cost = paired_margin(alone_estimate.per_seed, estimate.per_seed, objective.direction)  # > 0: alone is better
        rows.append({"scenario": assignment, "objective": estimate.summary(), "trajectory": estimate.trajectory,
                     "baselines": [{k: v for k, v in r.items() if k not in ("trajectory", "per_seed")}
                                   for r in baselines],
                     "best_here": {"policy": alone.user_attrs["policy"], "description": describe(alone_config),
                                   "search_value": alone.user_attrs["variant_values"][i],
                                   "objective": alone_estimate.summary(),
                                   "robust_cost": {k: cost[k] for k in ("mean", "ci_low", "ci_high")}}})
    values = np.mean(policy_values, axis=0)  # per seed, averaged over the variants (common seeds)
    half = 1.96 * values.std(ddof=1) / np.sqrt(len(values))
    return {"scenario": config.to_dict()["scenario"], "uncertain": specs, "policy": policy_dict(best_policy),
            "description": describe(result.config),
            "objective": {"metric": objective.name, "direction": objective.direction, "mean": float(values.mean()),
                          "ci_low": float(values.mean() - half), "ci_high": float(values.mean() + half),
                          "eval_seeds": eval_seeds, "averaged_over": len(variants)},
            "human_used": float(np.mean([r["objective"]["human_used"] for r in rows])),
            "baselines": [_averaged(n, rs, values, objective.direction, paired_margin)
                          for n, rs in baseline_values.items()],
            "variants": rows, "source": "optimised", "study": name, "trials": len(result.study.trials),
            "constraints": fixed}


def _averaged(name: str, rows: list, mine, direction: str, paired_margin) -> dict:
    """A baseline averaged over the variants, seed by seed (the variants share their seeds), with its
    95% CI and its paired margin against the robust policy's averaged values ``mine``."""
    import numpy as np

    theirs = np.mean([r["per_seed"] for r in rows], axis=0)
    half = 1.96 * theirs.std(ddof=1) / np.sqrt(len(theirs))
    margin = paired_margin(mine, theirs, direction)
    return {"name": name, "mean": float(theirs.mean()), "ci_low": float(theirs.mean() - half),
            "ci_high": float(theirs.mean() + half), "human_used": float(np.mean([r["human_used"] for r in rows])),
            "variants": len(rows), "margin": margin["mean"], "margin_ci_low": margin["ci_low"],
            "margin_ci_high": margin["ci_high"]}
