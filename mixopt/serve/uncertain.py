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
                        time_budget: float = 30.0, eval_seeds: int = 1000, progress: bool = False,
                        started: float | None = None) -> dict:
    """The policy that minimises the objective averaged over the scenario variants (a bounded
    search), its evaluation in each variant, and the best policy for each variant alone (from the
    same trials, which record every variant's value).

    Keeps to ``time_budget`` seconds of wall time from ``started`` as ``recommend`` does: the search
    gets its share, then every variant's policy, baselines and best-alone policy are evaluated
    together on common seeds, in chunks, until the deadline (at least one chunk) or ``eval_seeds``.
    """
    import time

    import numpy as np
    import optuna

    from mixopt.families import make_family
    from mixopt.optimizers.evaluate import paired_margin, paired_values
    from mixopt.optimizers.notes import assumptions
    from mixopt.optimizers.search import optimize_search
    from mixopt.optimizers.constraints import constraints as constraints_of, recommend_space
    from mixopt.optimizers.space import policy_dict
    from mixopt.optimizers.evaluators import RobustEvaluator
    from mixopt.serve.recommend import EVALUATION_END, LIMIT_END, SEARCH_SHARE

    started = time.perf_counter() if started is None else started
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
                             constraints=fixed, seeds=config.run.seeds, seed=config.run.seed, progress=progress,
                             timeout=max(0.1, SEARCH_SHARE * time_budget - (time.perf_counter() - started)),
                             evaluator=RobustEvaluator([objective], [v for _, v in variants],
                                                       seeds=config.run.seeds, seed=config.run.seed))
    searched = time.perf_counter() - started
    best_policy = result.config.policy
    configs, alone = _variant_configs(variants, best_policy, result.study, objective, fixed)
    values, used = paired_values({f"{i}|{n}": c for (i, n), c in configs.items()}, objective, seeds=eval_seeds,
                                 seed=config.run.seed, chunk=config.run.seeds,
                                 deadline=started + EVALUATION_END * time_budget, min_seeds=config.run.seeds,
                                 limit=started + LIMIT_END * time_budget,
                                 required=tuple(f"{i}|{n}" for i in range(len(variants))
                                                for n in ("__policy__", "__alone__")), compile_s=0.0)
    rows, policy_values, baseline_values = _variant_rows(variants, configs, values, alone, objective)
    values = np.mean(policy_values, axis=0)  # per seed, averaged over the variants (common seeds)
    half = 1.96 * values.std(ddof=1) / np.sqrt(len(values))
    finished = len(result.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,
                                                                   optuna.trial.TrialState.FAIL)))
    budget = {"time_budget": time_budget, "search_seconds": round(searched, 2),
              "seconds": round(time.perf_counter() - started, 2), "trials": finished, "eval_seeds": used,
              "eval_seeds_asked": eval_seeds, "precise": False, "cut_short": used < eval_seeds}
    return {"scenario": config.to_dict()["scenario"], "uncertain": specs, "policy": policy_dict(best_policy),
            "description": describe(result.config),
            "objective": {"metric": objective.name, "direction": objective.direction, "mean": float(values.mean()),
                          "ci_low": float(values.mean() - half), "ci_high": float(values.mean() + half),
                          "eval_seeds": used, "averaged_over": len(variants)},
            "human_used": float(np.mean([r["objective"]["human_used"] for r in rows])),
            "baselines": [_averaged(n, rs, values, objective.direction, paired_margin)  # every variant, or none
                          for n, rs in baseline_values.items() if len(rs) == len(variants)],
            "variants": rows, "source": "optimised", "study": name, "trials": finished, "budget": budget,
            "constraints": fixed, "assumptions": assumptions(config)}


def _variant_configs(variants, best_policy, study, objective, fixed: dict) -> tuple[dict, dict]:
    """(variant, name) -> config of the robust policy, each baseline keeping ``fixed``, and the best
    trial for that value alone; and that trial per variant."""
    import dataclasses

    from mixopt.optimizers.baselines import baseline_configs
    from mixopt.optimizers.space import policy_changes, with_policy

    sign = 1.0 if objective.direction == "minimize" else -1.0
    trials = [t for t in study.trials if t.value is not None and "variant_values" in t.user_attrs]
    configs, alone = {}, {}
    for i, (_, variant) in enumerate(variants):
        configs[(i, "__policy__")] = dataclasses.replace(variant, policy=best_policy)
        configs.update({(i, n): c for n, c in baseline_configs(variant, fixed).items()})
        alone[i] = min(trials, key=lambda t: sign * t.user_attrs["variant_values"][i])
        configs[(i, "__alone__")] = with_policy(dataclasses.replace(variant, policy=best_policy),
                                               **policy_changes(alone[i].user_attrs["policy"]))
    return configs, alone


def _variant_rows(variants, configs: dict, values: dict, alone: dict, objective) -> tuple[list, list, dict]:
    """Per variant: the robust policy's estimate, the baselines' rows and the best policy for that
    value alone with what robustness costs there (paired), from one paired evaluation (``values``)."""
    from mixopt.optimizers.evaluate import _estimate, _rows, paired_margin

    rows, policy_values, baseline_values = [], [], {}
    for i, (assignment, variant) in enumerate(variants):
        here = {n: values[f"{j}|{n}"] for j, n in configs if j == i}
        mine, theirs_alone = here.pop("__policy__"), here.pop("__alone__")
        if isinstance(mine, Exception):
            raise mine
        estimate = _estimate(mine, objective)
        baselines = _rows(estimate, here, objective)
        policy_values.append(estimate.per_seed)
        for row in baselines:
            if "mean" in row:
                baseline_values.setdefault(row["name"], []).append(row)
        best_here = {"policy": alone[i].user_attrs["policy"], "description": describe(configs[(i, "__alone__")]),
                     "search_value": alone[i].user_attrs["variant_values"][i]}
        if not isinstance(theirs_alone, Exception):  # the per-value best on the same fresh seeds, and what
            alone_estimate = _estimate(theirs_alone, objective)  # robustness costs here (> 0: alone is better)
            cost = paired_margin(alone_estimate.per_seed, estimate.per_seed, objective.direction)
            best_here.update(objective=alone_estimate.summary(),
                             robust_cost={k: cost[k] for k in ("mean", "ci_low", "ci_high")})
        rows.append({"scenario": assignment, "objective": estimate.summary(), "trajectory": estimate.trajectory,
                     "baselines": [{k: v for k, v in r.items() if k not in ("trajectory", "per_seed")}
                                   for r in baselines], "best_here": best_here})
    return rows, policy_values, baseline_values


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
