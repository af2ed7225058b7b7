"""The atlas's grids (``mixopt atlas build --grid``): per family a fixed world and objective metric, and
the axes that vary (the horizon, the budget per generation, contamination, a flow of human data), crossed
with the constraints and objective kinds an atlas is built for. No JAX at import."""
import itertools
import math

from mixopt import config as config_mod
from mixopt.errors import ConfigError

ATLAS_AXES = ("generations", "human_per_generation", "contamination", "flow")  # the grid an atlas spans


# family -> (fixed scenario keys, objective); the axes below vary
FAMILY_GRIDS = {
    "gaussian": ({"family": "gaussian", "samples": 100, "truth": {}}, "final:kl"),
    "categorical": ({"family": "categorical", "samples": 500, "truth": {"vocab": 100, "zipf": 1.1}}, "final:tv"),
}

# ``human_per_generation`` here: the budget after generation 0 per generation, as a share of a batch;
# ``flow``: the scenario's flow of human data (its ``human_per_generation``) as a share of a batch (inf: a stock)
GRIDS = {
    "default": {"generations": (5, 10, 20), "human_per_generation": (0.0, 0.05, 0.2), "contamination": (0.0, 0.3),
                "flow": (math.inf,)},
    "full": {"generations": (3, 5, 10, 20, 40), "human_per_generation": (0.0, 0.02, 0.05, 0.1, 0.2, 0.5),
             "contamination": (0.0, 0.1, 0.3, 0.5), "flow": (math.inf,)},
    # the pipeline limits' grid (issue 28): with --retentions free,replace,window,accumulate,train-size
    # and --objectives final,mean
    "constrained": {"generations": (5, 20), "human_per_generation": (0.05, 0.2), "contamination": (0.0,),
                    "flow": (math.inf, 0.1)},
}


# the constraints an atlas is built for: a retention rule, ``free`` (the search chooses), or
# ``train-size`` (the retention free, a training set of fixed size 2M: a pipeline limit)
RETENTION_CHOICES = ("free", "replace", "accumulate", "window", "subsample", "train-size")
OBJECTIVE_KINDS = ("final", "mean")


def grid_configs(families: str, grid: str, seeds: int, retentions: str = "free",
                 objectives: str = "final") -> list[tuple[config_mod.Config, str]]:
    """(config, objective) of every grid scenario, once per retention constraint (``free``: none) and
    objective kind (the family's metric at the last generation, or its mean over generations)."""
    rules = [r.strip() for r in retentions.split(",") if r.strip()]
    if not rules or any(r not in RETENTION_CHOICES for r in rules):
        raise ConfigError(f"retentions must be comma-separated {', '.join(RETENTION_CHOICES)}, got {retentions!r}")
    kinds = [k.strip() for k in objectives.split(",") if k.strip()]
    if not kinds or any(k not in OBJECTIVE_KINDS for k in kinds):
        raise ConfigError(f"objectives must be comma-separated {', '.join(OBJECTIVE_KINDS)}, got {objectives!r}")
    if grid not in GRIDS:
        raise ConfigError(f"grid must be one of {', '.join(GRIDS)}, got {grid!r}")
    names = [f.strip() for f in families.split(",") if f.strip()]
    unknown = [f for f in names if f not in FAMILY_GRIDS]
    if unknown or not names:
        raise ConfigError(f"families: the atlas grid covers {', '.join(FAMILY_GRIDS)}, got {families!r}")
    out = []
    axes = GRIDS[grid]
    for name in names:
        fixed, objective = FAMILY_GRIDS[name]
        points = itertools.product(rules, kinds, itertools.product(*[axes.get(a, (math.inf,)) for a in ATLAS_AXES]))
        for rule, kind, (T, share, contamination, flow) in points:
            budget = fixed["samples"] * (1 + share * T)
            scenario = {**fixed, "generations": T, "human_budget": budget, "contamination": contamination}
            if math.isfinite(flow):
                scenario["human_per_generation"] = flow * fixed["samples"]
            if rule == "train-size":
                scenario["train_size"] = 2 * fixed["samples"]
            policy = {} if rule in ("free", "train-size") else {"retention": rule}
            out.append((config_mod.from_dict({"scenario": scenario, "policy": policy, "run": {"seeds": seeds}}),
                        f"{kind}:{objective.split(':')[1]}"))
    return out
