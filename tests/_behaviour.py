"""Reference outputs that hold behaviour fixed while the code moves (issue 9).

``CASES`` spread over every family, every retention rule, the pool source, the budget cap,
contamination and provenance, curation, temperature and both samplers; ``GRADIENT_CASES`` are two
small ``optimize --method gradient`` runs. ``python tests/_behaviour.py`` records what the code
does now into ``tests/data/reference_outputs.json`` (float64, per seed); ``tests/test_behaviour.py``
holds the code to it. Re-record only for a change of random stream that is meant, and say why in
the commit.
"""
import json
import os
import sys

import jax
import numpy as np

SIZES = dict(generations=4, samples=20)
SEEDS = 6
PATH = os.path.join(os.path.dirname(__file__), "data", "reference_outputs.json")


def _case(family="gaussian", truth=None, policy=None, sampler=None, **scenario):
    return {"scenario": {"family": family, **SIZES, "truth": truth or {}, **scenario},
            "policy": policy or {}, "run": {"seeds": SEEDS, "seed": 3, "sampler": sampler}}


CASES = {
    "gaussian-replace-exact": _case(policy={"human_fraction": 0.1}),
    "gaussian-replace-naive": _case(policy={"human_fraction": 0.1}, sampler="naive"),
    "gaussian-accumulate-budget": _case(policy={"human_fraction": 0.5, "retention": "accumulate"},
                                        human_budget=50),
    "gaussian-window-weighted-schedule": _case(policy={"human_fraction": [0.0, 0.2, 0.4, 0.1], "retention": "window",
                                                       "window": 2, "human_weight": 0.7}),
    "gaussian-subsample": _case(policy={"human_fraction": 0.2, "retention": "subsample"}),
    "gaussian-pool": _case(policy={"human_fraction": 0.3, "human_source": "pool", "retention": "accumulate"}),
    "gaussian-pool-naive": _case(policy={"human_fraction": 0.3, "human_source": "pool"}, sampler="naive"),
    "gaussian-provenance-exact": _case(policy={"human_fraction": 0.5, "provenance_filter": True},
                                       contamination=0.3, detector_tpr=0.8, detector_fpr=0.1),
    "gaussian-provenance-naive": _case(policy={"human_fraction": 0.5, "provenance_filter": True},
                                       sampler="naive", contamination=0.3, detector_tpr=0.8, detector_fpr=0.1),
    "gaussian-contaminated": _case(policy={"human_fraction": 0.5, "retention": "accumulate"},
                                   contamination=[0.0, 0.2, 0.4, 0.6], human_budget=70),
    "gaussian-curated": _case(policy={"human_fraction": 0.1, "curation_fraction": 0.7, "retention": "accumulate"},
                              verifier_noise=0.5),
    "gaussian-2d-tempered": _case(truth={"dim": 2}, policy={"human_fraction": 0.1, "temperature": [1.2, 0.9, 1.0, 1.1]}),
    "categorical-exact": _case("categorical", {"vocab": 30, "smoothing": 0.1},
                               policy={"human_fraction": 0.1, "retention": "window", "window": 2}),
    "categorical-naive-tempered": _case("categorical", {"vocab": 30, "capacity": 20},
                                        policy={"human_fraction": 0.2, "temperature": 1.3}, sampler="naive"),
    "gmm": _case("gmm", {"components": 2, "em_steps": 5}, policy={"human_fraction": 0.2, "retention": "accumulate"}),
    "gmm-histogram": _case("gmm", {"components": 2, "em_steps": 5, "bins": 16, "limit": 6.0},
                           policy={"human_fraction": 0.2}),
    "regression-window": _case("regression", {"dim": 3, "ridge": 0.5},
                               policy={"human_fraction": 0.2, "retention": "window", "window": 2}),
    "neural": _case("neural", {"vocab": 4, "length": 2, "width": 4, "train_steps": 5},
                    policy={"human_fraction": 0.2, "retention": "accumulate"}),
}

GRADIENT_CASES = {
    "gaussian-fraction": dict(config=_case(policy={"human_fraction": 0.3, "retention": "accumulate"},
                                           human_budget=60),
                              space=("human_fraction",), objective="final:kl"),
    "categorical-linear-weight": dict(config=_case("categorical", {"vocab": 20},
                                                   policy={"human_fraction": 0.2, "human_weight": 0.5}),
                                      space=("human_fraction_linear", "human_weight"), objective="final:tail_mass"),
}


def run_case(data: dict) -> dict:
    """Metric name -> (seeds, T + 1) list of floats."""
    from mixopt import config as config_mod, montecarlo
    result = montecarlo.simulate(config_mod.from_dict(data))
    return {name: np.asarray(values).tolist() for name, values in result.per_seed.items()}


def run_gradient_case(case: dict) -> dict:
    """The written-back policy and the per-step losses of a short gradient run."""
    from mixopt import config as config_mod, objectives
    from mixopt.optimizers.gradient import optimize_gradient
    from mixopt.optimizers.space import policy_dict
    config = config_mod.from_dict(case["config"])
    result = optimize_gradient(config, objectives.parse(case["objective"], None)[0], case["space"],
                               steps=6, learning_rate=0.1, seeds=8, seed=1)
    return {"policy": policy_dict(result.config.policy), "losses": np.asarray(result.losses).tolist()}


def record() -> None:
    jax.config.update("jax_enable_x64", True)
    out = {"cases": {name: {"config": data, "per_seed": run_case(data)} for name, data in CASES.items()},
           "gradient": {name: {"case": {**case, "space": list(case["space"])}, **run_gradient_case(case)}
                        for name, case in GRADIENT_CASES.items()}}
    os.makedirs(os.path.dirname(PATH), exist_ok=True)
    with open(PATH, "w") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {PATH}", file=sys.stderr)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    record()
