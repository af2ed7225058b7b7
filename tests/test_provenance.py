"""Provenance: contaminated "fresh human" data (the polluted web), a detector, and the filter policy.

Checks: the budget and ``human_used`` count only real human samples (exact arithmetic); with plain
pooling, contamination c at human fraction lambda is the same world as fresh fraction
lambda (1 - c) (the contaminated samples are model samples like the synthetic ones), so the two
agree in distribution (two-sample KS, p > 1e-4), and a wrong equivalence (lambda unchanged) is
rejected; the exact and naive samplers agree with the detector filter on; a good detector undoes part of the
harm of a biased (low-temperature) model's pollution (one-sided comparisons of Monte-Carlo means
beyond 4 standard errors).
"""
import json
import subprocess
import sys

import numpy as np
import pytest
from scipy.stats import binom, ks_2samp

from _utils import run, two_sample_z, z_score
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


# The detector's closed form. Mean-only Gaussian fit (variance known = 1), replace, M = 20, lambda = 0.5:
# 10 slots bought as human, round(0.4 * 10) = 4 of them contaminated (samples of the current model),
# 6 real; 10 synthetic. The filter keeps a ~ Binomial(6, 1 - fpr) real and b ~ Binomial(4, 1 - tpr)
# contaminated samples, so mu_t = (sum of a truth draws + sum of b + S model draws) / (a + b + S) and
# E[mu_t^2] = sum_{a,b} P(a) P(b) [1 / (a + b + S) + (b + S)^2 / (a + b + S)^2 E[mu_{t-1}^2]],
# E[mu_0^2] = 1 / M; kl = mu^2 / 2 for this fit.
PROV_T, PROV_M, REAL, CONTAM, TPR, FPR = 5, 20, 6, 4, 0.7, 0.2
PROV_FLAGS = dict(family="gaussian", fit="mean", generations=PROV_T, samples=PROV_M, human_fraction=0.5,
                  contamination=0.4, detector_tpr=TPR, detector_fpr=FPR, provenance_filter=True)


def squared_mean_recursion(tpr, fpr):
    synth = PROV_M - REAL - CONTAM
    a, b = np.arange(REAL + 1)[:, None], np.arange(CONTAM + 1)[None, :]
    prob = binom.pmf(a, REAL, 1 - fpr) * binom.pmf(b, CONTAM, 1 - tpr)
    kept = a + b + synth
    out = [1 / PROV_M]
    for _ in range(PROV_T):
        out.append(np.sum(prob * (1 / kept + (b + synth) ** 2 / kept**2 * out[-1])))
    return np.array(out)


@pytest.mark.parametrize("sampler", ["exact", "naive"])
def test_the_filter_matches_its_closed_form(sampler):
    """|z| < 4 over 20000 seeds (SE from the sample std); ignoring fpr, or tpr, is rejected (max |z| > 4)."""
    out = run(20000, seed=4, sampler=sampler, **PROV_FLAGS)
    squared = 2 * out["kl"]
    z = z_score(squared, squared_mean_recursion(TPR, FPR))
    assert np.all(np.abs(z) < 4), np.round(z, 2)
    for wrong in (squared_mean_recursion(TPR, 0.0), squared_mean_recursion(0.0, FPR)):
        assert np.max(np.abs(z_score(squared, wrong))) > 4


def test_the_provenance_flags_reach_the_simulation_from_the_cli():
    """The same closed form through ``mixopt simulate`` with the four provenance flags (float32, as users
    run it): the mean kl per generation from the JSON, z from its std / sqrt(seeds)."""
    seeds = 20000
    proc = subprocess.run([sys.executable, "-m", "mixopt", "simulate", "--family", "gaussian", "--fit", "mean",
                           "--generations", str(PROV_T), "--samples", str(PROV_M), "--human-fraction", "0.5",
                           "--contamination", "0.4", "--detector-tpr", str(TPR), "--detector-fpr", str(FPR),
                           "--provenance-filter", "--seeds", str(seeds), "--format", "json", "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = [r for r in json.loads(proc.stdout)["trajectory"] if r["metric"] == "kl"]
    mean = np.array([r["mean"] for r in rows])
    se = np.array([r["std"] for r in rows]) / np.sqrt(seeds)
    assert np.all(np.abs((mean - squared_mean_recursion(TPR, FPR) / 2) / se) < 4)
    assert np.max(np.abs((mean - squared_mean_recursion(TPR, 0.0) / 2) / se)) > 4
    used = [r["mean"] for r in json.loads(proc.stdout)["trajectory"] if r["metric"] == "human_used"]
    assert used == [PROV_M + REAL * t for t in range(PROV_T + 1)]  # only the real slots are bought
