"""``mixopt atlas build``: recommendations precomputed over a grid of scenarios.

Each grid scenario is optimised as its own study in the usual storage (so the build is resumable:
a scenario whose study already holds a report from enough trials is skipped, an interrupted one
resumes its trials) and its report is collected into one JSON file that ``mixopt recommend`` reads
without importing JAX. Grid scenarios run in parallel worker processes (``workers``).

Grid axes (``ATLAS_AXES``, grids in ``atlas_grid``): the horizon T, the fresh human samples there are
per generation after generation 0 (as a share of a batch: budget = M + share * T * M), the
contamination of fresh human data and the flow of human data (``human_per_generation`` / M; inf: a
stock); family, truth and batch size are fixed per family.

Each entry answers within ``constraints`` (the policy keys its question fixed: ``--retentions``
builds entries per retention rule; ``free`` leaves the retention to the search; ``train-size``
builds them for a training set of 2M) and for one objective (``--objectives final,mean``).

Lookup (``from_atlas``): the nearest entry of an atlas for the same family, truth, batch size,
objective and constraints, when the scenario lies inside the atlas's grid; an atlas without entries
for the user's constraints does not answer (``recommend`` searches instead).
"""
import json
import math
import os
import sys
from importlib import resources
from pathlib import Path

from mixopt import config as config_mod
from mixopt.config import Config
from mixopt.describe import describe_report
from mixopt.errors import ConfigError
from mixopt.names import TRUTH_DEFAULTS
from mixopt.objectives import Objective

from mixopt.serve.atlas_grid import ATLAS_AXES, GRIDS, grid_configs
from mixopt.serve.evaluation import PRECISION, floor, record, reusable


def default_atlas_path():
    return resources.files("mixopt") / "data" / "atlas.json"


def load_atlas(path=None) -> dict:
    try:
        text = (Path(path) if path else default_atlas_path()).read_text()
        atlas = json.loads(text)
        entries = atlas["entries"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"atlas {path or 'default'}: cannot read the atlas: {err}") from None
    if not isinstance(entries, list):
        raise ConfigError(f"atlas {path or 'default'}: 'entries' must be a list")
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
    flow = scenario.get("human_per_generation", math.inf)
    flow = math.inf if flow == "inf" else float(flow) / scenario["samples"]
    return {"generations": float(scenario["generations"]), "human_per_generation": per_generation,
            "contamination": float(contamination), "flow": flow}


def _fixed(scenario: dict) -> str:
    """What an atlas entry must share with the query exactly (family, truth, batch size, detectors)."""
    drop = {"generations", "human_budget", "contamination", "human_per_generation"}
    fixed = {k: v for k, v in scenario.items() if k not in drop}
    fixed["truth"] = {**TRUTH_DEFAULTS.get(scenario["family"], {}), **scenario.get("truth", {})}  # defaults spelt out
    return json.dumps(fixed, sort_keys=True)


def _constrained(entry: dict) -> str:
    from mixopt.store import constraints_key

    return constraints_key(entry.get("constraints"))


def atlas_miss(config: Config, objective: Objective, atlas: dict, constraints: dict | None = None) -> str:
    """Why the atlas has no answer for this scenario, in one phrase (``from_atlas`` returned None)."""
    query = config.to_dict()["scenario"]
    wanted = _constrained({"constraints": constraints})
    kept = [e for e in atlas["entries"] if _constrained(e) == wanted]
    if not kept:
        return f"the atlas holds no entry for the constraints {wanted}"
    same = [e for e in kept if _fixed(e["scenario"]) == _fixed(query)]
    if not same:
        grids = sorted({f"{e['scenario']['family']} M={e['scenario']['samples']}" for e in atlas["entries"]})
        return f"the atlas holds no entry for this family, truth and batch size (it covers {', '.join(grids)})"
    if not [e for e in same if e.get("objective") == objective.name]:
        return f"the atlas's entries for this world optimise {same[0].get('objective')}, not {objective.name}"
    return "the scenario lies outside the atlas's grid (horizon, budget per generation or contamination)"


def from_atlas(config: Config, objective: Objective, atlas: dict, constraints: dict | None = None) -> dict | None:
    """The nearest atlas entry's report when the scenario lies inside the atlas grid, else None.

    Distance: the sum over the grid axes of |difference| / the axis's span among the candidate
    entries (log scale for the horizon); an infinite budget matches only infinite budgets.
    """
    query = config.to_dict()["scenario"]
    wanted = _constrained({"constraints": constraints})
    candidates = [e for e in atlas["entries"] if e.get("objective") == objective.name
                  and _fixed(e["scenario"]) == _fixed(query) and _constrained(e) == wanted]
    if not candidates:
        return None
    here = atlas_coordinates(query)
    points = [atlas_coordinates(e["scenario"]) for e in candidates]
    keep = [i for i, p in enumerate(points)  # an infinite budget (a stock) matches only its kind
            if all(math.isfinite(p[a]) == math.isfinite(here[a]) for a in ("human_per_generation", "flow"))]
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
    differs = {k: {"entry": entry["scenario"].get(k), "yours": query.get(k)}
               for k in ("generations", "human_budget", "contamination", "human_per_generation")
               if entry["scenario"].get(k) != query.get(k)}
    policy = _for_horizon(report["policy"], entry["scenario"]["generations"], query["generations"])
    return {**report, "policy": policy, "scenario": query, "source": "atlas", "constraints": constraints or {},
            "description": describe_report({"scenario": query, "policy": policy}),
            "atlas": {"distance": round(distance(points[best]), 6), "exact": distance(points[best]) == 0,
                      "entry_scenario": entry["scenario"], "entries_compared": len(keep), "differs": differs,
                      "entry_policy": report["policy"],
                      "note": "the numbers are the atlas entry's, measured in its scenario; the policy is "
                              "the entry's, stretched to your horizon and capped by your budget"}}


def _for_horizon(policy: dict, entry_generations: int, generations: int) -> dict:
    """The entry's policy for another horizon: a per-generation list is resampled by relative position
    (generation t of T takes the entry's generation at the same share of its horizon)."""
    out = dict(policy)
    for key, value in policy.items():
        if isinstance(value, list) and len(value) == entry_generations and entry_generations != generations:
            out[key] = [value[min(entry_generations - 1, int((t + 0.5) * entry_generations / generations))]
                        for t in range(generations)]
    return out


def _axis_value(axis: str, value: float) -> float:
    return math.log(value) if axis == "generations" else value


def build_point(config_dict: dict, fixed: list, objective_text: str, trials: int, eval_seeds: int,
                storage: str | None, precision: float) -> dict:
    """Optimises one grid scenario within its constraints (resuming its study) and returns its atlas entry.
    The report's fresh seeds run in chunks of the search's seeds: the programs the trials used, no new ones.
    With a ``precision`` the report stops as ``recommend``'s does: once every mean is known to that share
    of itself (95% half-width), after at least ``evaluation.floor`` seeds (``MIN_EVAL_SEEDS`` and the search's), or
    at ``eval_seeds``; an entry is then the answer an optimising ``recommend`` gives, on as many seeds."""
    import optuna

    from mixopt.families import make_family
    from mixopt.objectives import parse
    from mixopt.optimizers.search import optimize_search
    from mixopt.optimizers.evaluate import build_report
    from mixopt.optimizers.constraints import constraints as constraints_of, recommend_space
    from mixopt.store import REPORT_ATTR, default_study_name, store_report

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config = config_mod.from_dict(config_dict, fixed=fixed)
    family = make_family(config.scenario.family, config.scenario.truth, num_samples=config.scenario.samples)
    objective = parse(objective_text, family.metric_names + ("human_used",))[0]
    constraints = constraints_of(config)
    space = recommend_space(constraints)
    name = default_study_name(config, objective.name, space, constraints=constraints)
    result = optimize_search(config, [objective], space, trials=trials, storage=storage, constraints=constraints,
                             study_name=name, seeds=config.run.seeds, seed=config.run.seed)
    stored = result.study.user_attrs.get(REPORT_ATTR + objective.name)
    if stored is not None and stored["trials"] >= trials and reusable(stored, eval_seeds, precision):
        report = stored  # built by an earlier run of this build: not recomputed
    else:
        report = build_report(result.config, objective, eval_seeds=eval_seeds, seed=config.run.seed,
                              constraints=constraints, chunk=config.run.seeds, precision=precision or None,
                              min_seeds=floor(eval_seeds, config.run.seeds) if precision else 0)
        store_report(result.study, objective, {**report, "evaluation": record(report, eval_seeds, precision)})
        report = result.study.user_attrs[REPORT_ATTR + objective.name]
    return {"scenario": config.to_dict()["scenario"], "objective": objective.name, "constraints": constraints,
            "study": name, "report": report}


def _program_group(config: Config) -> tuple:
    s = config.scenario
    return s.family, s.generations, s.train_size or 0


def _point_worker(args):
    from mixopt.runtime import enable_compilation_cache

    enable_compilation_cache()  # a spawned worker does not inherit the parent's JAX settings
    return build_point(*args)


def build(*, families: str = "gaussian,categorical", grid: str = "default", trials: int = 40, seeds: int = 128,
          eval_seeds: int = 1000, workers: int = 1, storage: str | None = None, out: str | None = None,
          progress: bool = False, retentions: str = "free", objectives: str = "final",
          add_to: str | None = None, precision: float = PRECISION) -> dict:
    """Builds (or resumes) the atlas and writes it to ``out`` (default ``mixopt-atlas.json``);
    ``add_to``: an atlas whose entries are kept beside the new ones (an entry of the same scenario,
    objective and constraints is replaced), so one file answers several grids. ``precision``: each
    entry's report stops as ``recommend``'s does (``build_point``; 0: every one of ``eval_seeds``)."""
    for name, value, minimum in (("trials", trials, 1), ("seeds", seeds, 2), ("eval_seeds", eval_seeds, 2),
                                 ("workers", workers, 1)):
        if value < minimum:
            raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    if not 0 <= precision < 1:
        raise ConfigError(f"precision must be in [0, 1) (0: every evaluation seed), got {precision!r}")
    kept = load_atlas(add_to) if add_to else None  # read first: a bad file fails before the build
    points = grid_configs(families, grid, seeds, retentions, objectives)
    # scenarios that share compiled programs (family, horizon, training-set limit) run one after another:
    # the process keeps a group's programs instead of tracing them again for every other scenario
    order = sorted(range(len(points)), key=lambda i: _program_group(points[i][0]))
    jobs = [(c.to_dict(), sorted(c.fixed), objective, trials, eval_seeds, storage, precision)
            for c, objective in (points[i] for i in order)]
    entries = [None] * len(jobs)
    from mixopt.progress import Phase

    bar = Phase("atlas scenarios", len(jobs), unit="scenarios") if progress else None
    if workers == 1:
        results = map(_point_worker, jobs)
    else:
        import multiprocessing

        pool = multiprocessing.get_context("spawn").Pool(workers)
        results = pool.imap(_point_worker, jobs)
    try:
        for i, entry in zip(order, results):
            entries[i] = entry  # in the grid's order, whichever order they ran in
            if bar is not None:
                bar.update()
    finally:
        if workers > 1:
            pool.terminate()
        if bar is not None:
            bar.close()
    axes = {axis: [v if math.isfinite(v) else "inf" for v in values] for axis, values in GRIDS[grid].items()}
    built = {"grid": grid, "axes": axes, "families": families, "retentions": retentions, "objectives": objectives,
             "trials": trials, "seeds": seeds, "eval_seeds": eval_seeds, "precision": precision}
    if kept is not None:
        key = lambda e: (json.dumps(e["scenario"], sort_keys=True), e["objective"], _constrained(e))  # noqa: E731
        new = {key(e) for e in entries}
        entries = [e for e in kept["entries"] if key(e) not in new] + entries
        built = {"builds": kept.get("builds", [{k: v for k, v in kept.items() if k not in ("entries", "version")}])
                 + [built]}
    atlas = {"version": 1, **built, "entries": entries}
    path = Path(out or "mixopt-atlas.json")
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:  # written whole, then renamed: an interrupted build never leaves half an atlas
        tmp.write_text(json.dumps(atlas, indent=1) + "\n")
        os.replace(tmp, path)
    except OSError as err:
        raise ConfigError(f"out {path}: cannot write: {err.strerror}") from None
    print(f"wrote {path} ({len(entries)} entries)", file=sys.stderr)
    return atlas
