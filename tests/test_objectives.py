"""Objectives in both reductions and both directions.

- The reductions on a known trace: ``final`` takes generation T, ``mean`` averages generations 1..T
  (generation 0 does not depend on the policy).
- The directions are checked against the simulator, not restated: every metric the table maximises
  falls under collapse (replace, no human data, or a cold sampler for the tails), every metric it
  minimises rises; the mean change from generation 0 to T is beyond 4 standard errors of the paired
  per-seed change, in the stated direction.
- End to end: a search whose objective is a maximised metric under ``mean:`` picks the policy with
  the most human data; a flipped direction would pick none.
"""
import numpy as np
import pytest

from _utils import run
from mixopt import config as config_mod
from mixopt import objectives
from mixopt.objectives import MAXIMISE, MINIMISE
from mixopt.optimizers.search import optimize_search

TRACE = {"kl": np.array([[9.0, 1.0, 2.0, 6.0]]), "variance_ratio": np.array([[1.0, 0.8, 0.6, 0.1]])}


@pytest.mark.parametrize("text,value,loss", [
    ("final:kl", 6.0, 6.0), ("mean:kl", 3.0, 3.0),
    ("final:variance_ratio", 0.1, -0.1), ("mean:variance_ratio", 0.5, -0.5)])
def test_reductions_and_signs_on_a_known_trace(text, value, loss):
    objective = objectives.parse(text, tuple(TRACE))[0]
    np.testing.assert_allclose(objective.value(TRACE), [value])
    np.testing.assert_allclose(objective.loss(TRACE), [loss])  # lower is better, whichever the direction


COLLAPSING = [  # (family keys, metrics they produce): replace, no human data, many generations
    (dict(family="gaussian", dim=2, samples=10), ("variance_ratio", "log_det_ratio", "kl", "w2", "mean_shift")),
    (dict(family="categorical", vocab=30, samples=40, temperature=0.7, minority=0.2, minority_size=6),
     ("support", "tail_mass", "entropy_ratio", "minority_share", "tv", "lost_mass", "collision")),
    (dict(family="regression", dim=3, samples=10), ("test_error",)),
]


@pytest.mark.parametrize("keys,names", COLLAPSING, ids=[k["family"] for k, _ in COLLAPSING])
def test_maximised_metrics_fall_and_minimised_ones_rise_under_collapse(keys, names):
    out = run(2000, generations=8, **keys)
    for name in names:
        change = out[name][:, -1] - out[name][:, 0]
        z = change.mean() / (change.std(ddof=1) / np.sqrt(len(change)))
        assert name in MAXIMISE | MINIMISE
        assert (z < -4) if name in MAXIMISE else (z > 4), (name, z)


def test_a_maximised_mean_objective_picks_the_most_human_data(tmp_path):
    config = config_mod.from_dict({"scenario": {"generations": 5, "samples": 20}, "policy": {"human_fraction": 0.5}})
    objective = objectives.parse("mean:variance_ratio", ("variance_ratio",))
    assert objective[0].direction == "maximize"
    result = optimize_search(config, objective, ("human_fraction",), trials=6, storage=str(tmp_path / "s.log"),
                             study_name="max", seeds=256, seed=0)
    # the enqueued baselines include front-load (1.0: all human without a budget) and none (0.0): maximising must prefer 1.0
    assert result.config.policy.human_fraction >= 0.9, result.config.policy.human_fraction
