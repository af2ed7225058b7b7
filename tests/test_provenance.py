"""Provenance: contaminated "fresh human" data (the polluted web), a detector, and the filter policy.

Checks: the budget and ``human_used`` count only real human samples (exact arithmetic); with plain
pooling, contamination c at human fraction lambda is the same world as fresh fraction
lambda (1 - c) (the contaminated samples are model samples like the synthetic ones), so the two
agree in distribution (two-sample KS, p > 1e-4), and a wrong equivalence (lambda unchanged) is
rejected; the exact and naive samplers agree with the detector filter on; a good detector undoes part of the
harm of a biased (low-temperature) model's pollution (one-sided comparisons of Monte-Carlo means
beyond 4 standard errors).
"""
import numpy as np
import pytest
from scipy.stats import ks_2samp

from _utils import run, two_sample_z
from mixopt import config as config_mod
from mixopt.errors import ConfigError

BASE = dict(family="gaussian", generations=5, samples=20, fit="mean")
METRIC = "mean_shift"


def min_p(a, b):
    return min(ks_2samp(a[METRIC][:, t], b[METRIC][:, t]).pvalue for t in (1, 3, 5))


def test_human_used_counts_only_real_human_samples():
    out = run(4, human_fraction=0.5, contamination=0.3, **BASE)
    # 10 slots bought as human per generation, round(0.3 * 10) = 3 of them contaminated
    np.testing.assert_array_equal(out["human_used"][0], 20 + 7 * np.arange(6))


@pytest.mark.parametrize("sampler", ["exact", "naive"])
def test_contamination_is_a_smaller_fresh_share_under_plain_pooling(sampler):
    polluted = run(4000, seed=1, sampler=sampler, human_fraction=0.5, contamination=0.4, **BASE)
    clean = run(4000, seed=2, sampler=sampler, human_fraction=0.3, **BASE)
    assert min_p(polluted, clean) > 1e-4
    believed = run(4000, seed=3, sampler=sampler, human_fraction=0.5, **BASE)
    assert min_p(polluted, believed) < 1e-4  # power: the contamination does change the world


def test_exact_and_naive_agree_with_the_detector_filter():
    case = dict(human_fraction=0.6, contamination=0.5, detector_tpr=0.7, detector_fpr=0.2,
                provenance_filter=True, human_weight=0.7, retention="window", window=2, **BASE)
    assert min_p(run(4000, seed=1, sampler="exact", **case), run(4000, seed=2, sampler="naive", **case)) > 1e-4


def test_a_good_detector_undoes_part_of_the_harm_of_biased_polluted_data():
    """Contaminated samples of a model sampled at temperature 0.7 carry its bias (lost tails);
    dropping what a good detector flags brings tv closer to the clean world. (Where the model's
    samples are unbiased, e.g. the Gaussian mean, filtering can *hurt*: it trades bias for fewer
    samples; that is the optimiser's trade-off, not a law.)"""
    case = dict(family="categorical", vocab=50, temperature=0.7, generations=10, samples=200, human_fraction=0.5,
                contamination=0.6, detector_tpr=0.95, detector_fpr=0.05)
    unfiltered = run(2000, seed=1, **case)
    filtered = run(2000, seed=2, provenance_filter=True, **case)
    clean = run(2000, seed=3, **{**case, "contamination": 0.0})
    assert two_sample_z(filtered["tv"][:, -1], unfiltered["tv"][:, -1]) < -4
    assert two_sample_z(clean["tv"][:, -1], filtered["tv"][:, -1]) < -4


def test_bad_provenance_keys():
    with pytest.raises(ConfigError, match="scenario.contamination must be in"):
        config_mod.from_dict({"scenario": {"contamination": 1.5}})
    with pytest.raises(ConfigError, match="one value per generation"):
        config_mod.from_dict({"scenario": {"generations": 3, "contamination": [0.1, 0.2]}})
    with pytest.raises(ConfigError, match="detector_tpr must be in"):
        config_mod.from_dict({"scenario": {"detector_tpr": -0.1}})
    with pytest.raises(ConfigError, match="provenance_filter must be true or false"):
        config_mod.from_dict({"policy": {"provenance_filter": "yes"}})
    with pytest.raises(ConfigError, match="does not combine with retention subsample"):
        config_mod.from_dict({"policy": {"provenance_filter": True, "retention": "subsample"}})
