"""``mixopt recommend``: a scenario in, the best known policy out, with its evidence.

Where the answer comes from, in order (the payload's ``source``):

1. ``study``: a stored study for the same scenario and objective that holds a report (``mixopt
   optimize``, ``atlas build`` and earlier recommendations write one). Read from the storage; nothing
   is simulated, and JAX is not imported.
2. ``atlas``: the nearest entry of a policy atlas (the one shipped with the package, or ``--atlas
   PATH``) built for the same family, truth, batch size and objective, when the scenario lies inside
   the atlas's grid of horizons, budgets and contamination levels. The payload says which entry and
   how near; its numbers are the entry's, measured in the entry's scenario.
3. ``optimised``: a bounded Optuna search (``time_budget`` seconds) over a decaying human-fraction
   schedule and the retention rule, re-evaluated on fresh seeds against the baselines, and stored as
   a study with its report, so the next query for this scenario is answered from storage.

A report is the JSON object of DESIGN.md section 4 (``policy``, ``objective``, ``human_used``,
``baselines``, ``source``) plus ``description`` (the policy in words), ``trajectory`` (the objective's
metric per generation with a 95% CI, for the policy and for each baseline) and ``scenario``.
"""
import json
import math
from importlib import resources
from pathlib import Path

from mixopt.config import Config
from mixopt.errors import ConfigError
from mixopt.names import TRUTH_DEFAULTS
from mixopt.objectives import Objective, parse
from mixopt.policies import supply

REPORT_ATTR = "report:"  # study user attribute holding the report of an objective: "report:final:kl"
RECOMMEND_SPACE = ("human_fraction_decay", "retention", "window")
# Tried first, before the baselines: spend the fresh human data as early as the budget allows and
# accumulate (what the atlas's searches found best across its grid). A time-bounded search on a slow
# family may evaluate little more than the first few trials: the baselines alone only spend nothing
# or everything.
RECOMMEND_FIRST = [{"retention": "accumulate", "human_fraction_decay.start": 1.0, "human_fraction_decay.rate": 0.0}]
ATLAS_AXES = ("generations", "human_per_generation", "contamination")  # the grid an atlas spans


def scenario_key(config: Config) -> str:
    """The canonical JSON of a scenario: what a stored study must match."""
    return json.dumps(config.to_dict()["scenario"], sort_keys=True)


# --- the report -------------------------------------------------------------------------------------

def build_report(config: Config, objective: Objective, *, eval_seeds: int, seed: int,
                 start: Config | None = None) -> dict:
    """The policy of ``config`` and every baseline on the same fresh seeds (imports JAX).

    ``start``: the policy an optimiser started from, compared on the same seeds like a baseline and
    reported apart as ``start`` (with the paired margin: how much the optimiser improved on it).
    """
    from mixopt.optimize import baseline_configs, compare, policy_dict

    others = baseline_configs(config)
    if start is not None:
        others["start"] = start
    estimate, baselines = compare(config, objective, others, seeds=eval_seeds, seed=seed)
    extra = {}
    if start is not None:  # compare() keeps the order of ``others``: the start is its last row
        extra = {"start": {**baselines.pop(), "policy": policy_dict(start.policy)}}
    return {**extra, "scenario": config.to_dict()["scenario"], "policy": policy_dict(config.policy),
            "description": describe(config), "objective": {
                "metric": objective.name, "direction": objective.direction, "mean": estimate.mean,
                "ci_low": estimate.ci_low, "ci_high": estimate.ci_high, "eval_seeds": eval_seeds},
            "human_used": estimate.human_used, "trajectory": estimate.trajectory, "baselines": baselines}


def store_report(study, objective: Objective, report: dict) -> None:
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    study.set_user_attr(REPORT_ATTR + objective.name, {**report, "trials": len(complete)})


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


# --- 1. stored studies --------------------------------------------------------------------------------

def from_storage(config: Config, objective: Objective, storage: str | None) -> dict | None:
    """The stored report for this scenario and objective, or None. Nothing is simulated."""
    import optuna

    from mixopt.store import get_storage, resolve_url

    url = resolve_url(storage)
    if "://" not in url and not Path(url).exists():
        return None  # no journal yet: nothing stored (and nothing created by asking)
    key = scenario_key(config)
    found = []
    for summary in optuna.get_all_study_summaries(get_storage(url), include_best_trial=False):
        attrs = summary.user_attrs
        report = attrs.get(REPORT_ATTR + objective.name)
        if report is not None and attrs.get("scenario") == key:
            found.append({**report, "description": describe_report(report), "source": "study",
                          "study": summary.study_name})
    if not found:
        return None
    sign = 1.0 if objective.direction == "minimize" else -1.0  # several studies: the best report wins
    return min(found, key=lambda report: sign * report["objective"]["mean"])


# --- 2. the atlas -------------------------------------------------------------------------------------

def default_atlas_path():
    return resources.files("mixopt") / "data" / "atlas.json"


def load_atlas(path=None) -> dict:
    try:
        text = (Path(path) if path else default_atlas_path()).read_text()
        atlas = json.loads(text)
        entries = atlas["entries"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"--atlas {path or 'default'}: cannot read the atlas: {err}") from None
    if not isinstance(entries, list):
        raise ConfigError(f"--atlas {path or 'default'}: 'entries' must be a list")
    return atlas


def atlas_coordinates(scenario: dict) -> dict:
    """Where a scenario sits on the atlas grid: horizon, fresh human samples per generation after
    generation 0 as a share of a batch (budget), and contamination."""
    budget = scenario["human_budget"]
    budget = math.inf if budget == "inf" else float(budget)
    contamination = scenario.get("contamination", 0.0)
    if isinstance(contamination, list):
        contamination = sum(contamination) / len(contamination)
    per_generation = (budget - scenario["samples"]) / (scenario["generations"] * scenario["samples"])
    return {"generations": float(scenario["generations"]), "human_per_generation": per_generation,
            "contamination": float(contamination)}


def _fixed(scenario: dict) -> str:
    """What an atlas entry must share with the query exactly (family, truth, batch size, detectors)."""
    drop = {"generations", "human_budget", "contamination"}
    fixed = {k: v for k, v in scenario.items() if k not in drop}
    fixed["truth"] = {**TRUTH_DEFAULTS.get(scenario["family"], {}), **scenario.get("truth", {})}  # defaults spelt out
    return json.dumps(fixed, sort_keys=True)


def from_atlas(config: Config, objective: Objective, atlas: dict) -> dict | None:
    """The nearest atlas entry's report when the scenario lies inside the atlas grid, else None.

    Distance: the sum over the grid axes of |difference| / the axis's span among the candidate
    entries (log scale for the horizon); an infinite budget matches only infinite budgets.
    """
    query = config.to_dict()["scenario"]
    candidates = [e for e in atlas["entries"]
                  if e.get("objective") == objective.name and _fixed(e["scenario"]) == _fixed(query)]
    if not candidates:
        return None
    here = atlas_coordinates(query)
    points = [atlas_coordinates(e["scenario"]) for e in candidates]
    finite = math.isfinite(here["human_per_generation"])
    keep = [i for i, p in enumerate(points) if math.isfinite(p["human_per_generation"]) == finite]
    if not keep:
        return None
    scale = {}
    for axis in ATLAS_AXES:
        values = [_axis_value(axis, points[i][axis]) for i in keep if math.isfinite(points[i][axis])]
        value = _axis_value(axis, here[axis])
        if values and math.isfinite(value) and not min(values) - 1e-9 <= value <= max(values) + 1e-9:
            return None  # outside the grid: the atlas does not speak for this scenario
        scale[axis] = (max(values) - min(values)) or 1.0 if values else 1.0

    def distance(point):
        return sum(abs(_axis_value(a, point[a]) - _axis_value(a, here[a])) / scale[a]
                   for a in ATLAS_AXES if math.isfinite(here[a]) and math.isfinite(point[a]))

    best = min(keep, key=lambda i: distance(points[i]))
    entry = candidates[best]
    report = dict(entry["report"])
    return {**report, "description": describe_report(report), "source": "atlas",
            "atlas": {"distance": round(distance(points[best]), 6), "exact": distance(points[best]) == 0,
                      "entry_scenario": entry["scenario"], "entries_compared": len(keep),
                      "note": "the numbers are the atlas entry's, measured in its scenario"}}


def _axis_value(axis: str, value: float) -> float:
    return math.log(value) if axis == "generations" else value


# --- 3. a bounded optimisation ------------------------------------------------------------------------

def optimise(config: Config, objective: Objective, *, storage: str | None, time_budget: float, eval_seeds: int,
             trials: int = 10_000, progress: bool = False, study_name: str | None = None) -> dict:
    """A time-bounded Optuna search, its best policy re-evaluated and stored as the study's report."""
    from mixopt.optimize import optimize_search
    from mixopt.optimizing import default_study_name

    name = study_name or default_study_name(config, objective.name, RECOMMEND_SPACE)
    result = optimize_search(config, [objective], RECOMMEND_SPACE, trials=trials, storage=storage, study_name=name,
                             seeds=config.run.seeds, seed=config.run.seed, timeout=time_budget, progress=progress,
                             first_candidates=RECOMMEND_FIRST)
    report = build_report(result.config, objective, eval_seeds=eval_seeds, seed=config.run.seed)
    store_report(result.study, objective, report)
    return {**report, "source": "optimised", "study": name, "trials": len(result.study.trials)}


def recommend(config: Config, objective_text: str, *, storage: str | None = None, atlas_path=None,
              time_budget: float = 20.0, eval_seeds: int = 1000, use_atlas: bool = True,
              progress: bool = False, on_compute=None) -> dict:
    """The recommendation for ``config``'s scenario (its policy is ignored): study, atlas or optimised."""
    if not time_budget > 0:
        raise ConfigError(f"--time-budget must be > 0 seconds, got {time_budget!r}")
    if eval_seeds < 2:
        raise ConfigError(f"--eval-seeds must be >= 2, got {eval_seeds}")
    objectives = parse(objective_text, None)
    if len(objectives) > 1:
        raise ConfigError("recommend takes one objective (use mixopt optimize --search nsga for a Pareto front)")
    objective = objectives[0]
    found = from_storage(config, objective, storage)
    if found is None and use_atlas:
        found = from_atlas(config, objective, load_atlas(atlas_path))
    if found is not None:
        return found
    if on_compute is not None:
        on_compute()  # e.g. the CLI's persistent compilation cache, set up only when JAX is needed
    from mixopt.families import make_family

    family = make_family(config.scenario.family, config.scenario.truth, num_samples=config.scenario.samples)
    objective = parse(objective_text, family.metric_names + ("human_used",))[0]  # the family check
    return optimise(config, objective, storage=storage, time_budget=time_budget, eval_seeds=eval_seeds,
                    progress=progress)


# --- robust: --uncertain KEY=LO:HI ----------------------------------------------------------------------

UNCERTAIN_SCENARIO_KEYS = ("contamination", "human_budget", "detector_tpr", "detector_fpr", "verifier_noise")
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
            raise ConfigError(f"--uncertain {spec!r} must look like KEY=LO:HI with numbers LO <= HI")
        truth_key = key.removeprefix("truth.")
        if key not in UNCERTAIN_SCENARIO_KEYS and truth_key not in config.scenario.truth and not key.startswith("truth."):
            raise ConfigError(f"--uncertain key {key!r} must be one of {', '.join(UNCERTAIN_SCENARIO_KEYS)} "
                              "or a truth key (truth.NAME)")
        ranges.append((key, [lo + (hi - lo) * i / (UNCERTAIN_POINTS - 1) for i in range(UNCERTAIN_POINTS)]))
    if len(ranges) > 2:
        raise ConfigError("--uncertain takes at most two keys (3^k scenario variants are simulated per trial)")
    variants = []
    for values in itertools.product(*[v for _, v in ranges]):
        assignment = dict(zip([k for k, _ in ranges], values))
        data = config.to_dict()
        for key, value in assignment.items():
            if key in UNCERTAIN_SCENARIO_KEYS:
                data["scenario"][key] = value
            else:
                truth_key = key.removeprefix("truth.")
                old = config.scenario.truth.get(truth_key)
                data["scenario"]["truth"][truth_key] = int(round(value)) if isinstance(old, int) else value
        variants.append((assignment, config_mod.from_dict(data)))
    return variants


def recommend_uncertain(config: Config, objective_text: str, specs: list[str], *, storage: str | None = None,
                        time_budget: float = 30.0, eval_seeds: int = 1000, progress: bool = False) -> dict:
    """The policy that minimises the objective averaged over the scenario variants (a bounded
    search), its evaluation in each variant, and the best policy for each variant alone (from the
    same trials, which record every variant's value)."""
    import dataclasses

    import numpy as np

    from mixopt.families import make_family
    from mixopt.optimize import baseline_configs, compare, optimize_search, policy_dict
    from mixopt.optimize.space import with_policy
    from mixopt.optimize.search import RobustEvaluator
    from mixopt.optimizing import default_study_name

    if not time_budget > 0:
        raise ConfigError(f"--time-budget must be > 0 seconds, got {time_budget!r}")
    variants = parse_uncertain(specs, config)
    family = make_family(config.scenario.family, config.scenario.truth, num_samples=config.scenario.samples)
    objective = parse(objective_text, family.metric_names + ("human_used",))[0]
    name = "robust-" + default_study_name(config, f"{objective.name}|{'|'.join(sorted(specs))}", RECOMMEND_SPACE)
    result = optimize_search(config, [objective], RECOMMEND_SPACE, trials=10_000, storage=storage, study_name=name,
                             seeds=config.run.seeds, seed=config.run.seed, timeout=time_budget, progress=progress,
                             evaluator=RobustEvaluator([objective], [v for _, v in variants],
                                                       seeds=config.run.seeds, seed=config.run.seed),
                             first_candidates=RECOMMEND_FIRST)
    best_policy = result.config.policy
    sign = 1.0 if objective.direction == "minimize" else -1.0
    trials = [t for t in result.study.trials if t.value is not None and "variant_values" in t.user_attrs]
    rows, policy_values, baseline_values = [], [], {}
    for i, (assignment, variant) in enumerate(variants):
        mine = dataclasses.replace(variant, policy=best_policy)
        estimate, baselines = compare(mine, objective, baseline_configs(variant), seeds=eval_seeds,
                                      seed=config.run.seed)
        policy_values.append(estimate.per_seed)
        for row in baselines:
            if "mean" in row:
                baseline_values.setdefault(row["name"], []).append(row)
        alone = min(trials, key=lambda t: sign * t.user_attrs["variant_values"][i])
        alone_config = with_policy(dataclasses.replace(variant, policy=best_policy),
                                   **_changes(alone.user_attrs["policy"]))
        rows.append({"scenario": assignment, "objective": estimate.summary(), "trajectory": estimate.trajectory,
                     "baselines": [{k: v for k, v in r.items() if k != "trajectory"} for r in baselines],
                     "best_here": {"policy": alone.user_attrs["policy"], "description": describe(alone_config),
                                   "search_value": alone.user_attrs["variant_values"][i]}})
    values = np.mean(policy_values, axis=0)  # per seed, averaged over the variants (common seeds)
    half = 1.96 * values.std(ddof=1) / np.sqrt(len(values))
    return {"scenario": config.to_dict()["scenario"], "uncertain": specs, "policy": policy_dict(best_policy),
            "description": describe(result.config),
            "objective": {"metric": objective.name, "direction": objective.direction, "mean": float(values.mean()),
                          "ci_low": float(values.mean() - half), "ci_high": float(values.mean() + half),
                          "eval_seeds": eval_seeds, "averaged_over": len(variants)},
            "human_used": float(np.mean([r["objective"]["human_used"] for r in rows])),
            "baselines": [{"name": n, "mean": float(np.mean([r["mean"] for r in rs])),
                           "human_used": float(np.mean([r["human_used"] for r in rs])), "variants": len(rs)}
                          for n, rs in baseline_values.items()],
            "variants": rows, "source": "optimised", "study": name, "trials": len(result.study.trials)}


def _changes(policy: dict) -> dict:
    from mixopt.optimize.search import _policy_changes

    return _policy_changes(policy)
