"""The ``exact`` statistic sampler agrees in distribution with the ``naive`` sample-level one.

Two-sample Kolmogorov-Smirnov tests on several metrics and generations, 4000 seeds per sampler
(independent seeds). Each configuration runs 9 tests; rejecting at p < 1e-4 keeps the family-wise
false-alarm rate under 0.1% per configuration, and the power check shows that a sampler wrong by one
degree of freedom (the scatter drawn as Wishart(n) instead of Wishart(n - 1)) is rejected.
"""
import jax
import numpy as np
import pytest
from scipy.stats import ks_2samp

from _utils import run
from mixopt import config as config_mod
from mixopt import montecarlo
from mixopt.errors import ConfigError
from mixopt.families import gaussian
from mixopt.families.gaussian import GaussianStats, standard_wishart
from mixopt.generation import simulator
from mixopt.policies.retention import replace

SEEDS, T, M = 4000, 6, 10
METRICS = ("variance_ratio", "mean_shift", "kl")
GENERATIONS = (1, 3, T)
CASES = [
    dict(retention="replace"),
    dict(retention="accumulate", human_fraction=0.3),
    dict(retention="window", window=2, human_fraction=0.2, human_weight=0.6),
    dict(retention="replace", human_fraction=0.5, human_source="pool"),
    dict(retention="accumulate", human_fraction=0.5, human_budget=25, dim=3, estimator="unbiased"),
]


def min_p_value(a, b):
    return min(ks_2samp(a[name][:, t], b[name][:, t]).pvalue for name in METRICS for t in GENERATIONS)


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{v}" for v in c.values()))
def test_exact_and_naive_agree_in_distribution(case):
    exact = run(SEEDS, seed=1, sampler="exact", generations=T, samples=M, **case)
    naive = run(SEEDS, seed=2, sampler="naive", generations=T, samples=M, **case)
    assert min_p_value(exact, naive) > 1e-4
    np.testing.assert_array_equal(exact["human_used"], naive["human_used"])


def test_power_a_wrong_statistic_sampler_is_rejected():
    family = gaussian(dim=1)

    def off_by_one(key, params, count):  # scatter ~ Wishart(n) instead of Wishart(n - 1)
        right = family.sample_stats(key, params, count)
        scatter = params.cov * standard_wishart(jax.random.fold_in(key, 1), count, 1)
        return GaussianStats(right.count, right.mean, scatter)

    inputs = montecarlo.SimInputs(np.zeros(T), np.zeros(T), np.asarray(np.inf))
    outputs = []
    for fam, sampler, seed in [(family._replace(sample_stats=off_by_one), "exact", 1), (family, "naive", 2)]:
        sim = simulator(fam, replace(), num_generations=T, num_samples=M, sampler=sampler)
        info = montecarlo.batched(sim)(montecarlo.seed_keys(seed, SEEDS), inputs)
        outputs.append({k: np.asarray(v) for k, v in info.metrics.items()})
    assert min_p_value(*outputs) < 1e-4


def test_subsample_has_no_exact_sampler_and_defaults_to_naive():
    config = config_mod.from_dict({"policy": {"retention": "subsample"}})
    assert config.sampler == "naive"
    forced = config_mod.from_dict({"policy": {"retention": "subsample"}, "run": {"sampler": "exact"}})
    with pytest.raises(ConfigError, match="sampler = exact does not apply"):
        montecarlo.build(forced)
