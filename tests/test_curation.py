"""Curation: a verifier keeps the top share q of each batch's synthetic samples by true log-density.

Closed form (Gaussian, noiseless verifier, lambda = 0, replace): the model of generation t - 1 is
N(m, s^2) with m close to the true mean 0, so the truth's density ranks the synthetic samples by |x|
and the kept share q is the central interval |x| <= c s, c = Phi^-1((1 + q) / 2), whose variance is
s^2 v(q), v(q) = 1 - 2 c phi(c) / q (a truncated normal). Each generation multiplies the variance by
v(q): E[variance_ratio_t] = ((M - 1) / M) v(q)^t, up to O(t / M) relative terms (the mle divisor of
the kept n = qM samples and the model's mean offset, second order), far below the Monte-Carlo
standard error at M = 20000. Tolerance: |z| < 4 per generation; the same draws must reject the
off-by-one-generation formula v(q)^(t + 1) with |z| > 4.
"""
import subprocess
import sys

import jax
import numpy as np
import pytest
from scipy.stats import norm

from _utils import run, two_sample_z, z_score
from mixopt import config as config_mod
from mixopt import montecarlo

Q, M, T = 0.9, 20000, 3


def truncated_variance(q):
    c = norm.ppf((1 + q) / 2)
    return 1 - 2 * c * norm.pdf(c) / q


def test_truncated_variance_by_plain_monte_carlo():
    x = np.random.default_rng(0).standard_normal(2_000_000)
    kept = np.sort(np.abs(x))[: int(Q * x.size)]  # the q share with the highest density
    # kept values are symmetric about 0 in distribution: their variance is the mean square
    se = np.std(kept**2) / np.sqrt(kept.size)
    assert abs(np.mean(kept**2) - truncated_variance(Q)) < 4 * se


def test_noiseless_curation_shrinks_the_variance_by_the_truncated_normal_factor():
    out = run(400, family="gaussian", generations=T, samples=M, curation_fraction=Q, sampler="naive")
    gens = np.arange(T + 1)
    predicted = (M - 1) / M * truncated_variance(Q) ** gens
    assert np.max(np.abs(z_score(out["variance_ratio"], predicted))) < 4
    wrong = (M - 1) / M * truncated_variance(Q) ** (gens + 1)
    assert np.max(np.abs(z_score(out["variance_ratio"], wrong))) > 4


def test_a_blind_verifier_keeps_a_uniform_subset():
    # noise far above any log-density difference: the kept qM samples are a uniform subset, so
    # iid N(m, s^2): E[variance_ratio_1] = ((M - 1) / M) ((n - 1) / n), n = round(q M) (mle, exact)
    m, q = 50, 0.5
    out = run(20000, family="gaussian", generations=1, samples=m, curation_fraction=q, verifier_noise=1e9,
              sampler="naive")
    n = round(q * m)
    assert abs(z_score(out["variance_ratio"][:, 1], (m - 1) / m * (n - 1) / n)) < 4
    assert abs(z_score(out["variance_ratio"][:, 1], ((m - 1) / m) ** 2)) > 4  # no shrinking of the batch: wrong


def test_the_batch_keeps_round_q_times_the_synthetic_samples():
    config = config_mod.from_dict({"scenario": {"generations": 1, "samples": 40},
                                   "policy": {"retention": "accumulate", "human_fraction": 0.25,
                                              "curation_fraction": 0.3}, "run": {"sampler": "naive"}})
    sim, inputs = montecarlo.build(config)
    state, _ = sim.init(jax.random.key(0), inputs)
    first = jax.tree.map(lambda x: x[0], inputs.per_generation(1))  # the named inputs of generation 1
    state, _ = sim.step(state, (jax.random.key(1), first))
    assert float(state.buffer.human.count) == 40 + 10  # generation 0 and 10 fresh human samples
    assert float(state.buffer.synth.count) == round(0.3 * 30)


def test_curated_labels_help_regression():
    # Feng et al. 2024: verifying synthetic labels (keep the half most likely under the truth)
    # keeps the error of a replace loop lower than training on every synthetic label
    plain = run(400, family="regression", dim=3, generations=4, samples=200, sampler="naive")
    curated = run(400, family="regression", dim=3, generations=4, samples=200, sampler="naive",
                  curation_fraction=0.5)
    assert two_sample_z(plain["test_error"][:, 4], curated["test_error"][:, 4]) > 4


def test_curation_compiles_once_for_other_shares():
    from _utils import count_compilations

    config = config_mod.from_dict({"scenario": {"generations": 3, "samples": 30},
                                   "policy": {"curation_fraction": 0.8}, "run": {"sampler": "naive"}})
    run_fn = montecarlo.runner(config)
    keys = montecarlo.seed_keys(0, 4)
    run_fn(keys, montecarlo.sim_inputs(config))
    other = config_mod.from_dict({**config.to_dict(), "policy": {"curation_fraction": [0.5, 0.6, 0.7]}})
    with count_compilations() as counter:
        jax.block_until_ready(run_fn(keys, montecarlo.sim_inputs(other)))
    assert counter.count == 0


@pytest.mark.parametrize("flags,message", [
    (["--curation-fraction", "0"], "curation_fraction must be in (0, 1]"),
    (["--curation-fraction", "1.5"], "curation_fraction must be in [0, 1]"),
    (["--curation-fraction", "0.5", "--retention", "subsample"], "does not combine with retention subsample"),
    (["--curation-fraction", "0.5", "--sampler", "exact"], "use run.sampler = naive"),
    (["--verifier-noise", "-1"], "verifier_noise must be a number >= 0"),
])
def test_bad_curation_input_is_one_line(flags, message):
    proc = subprocess.run([sys.executable, "-m", "mixopt", "simulate", "--seeds", "2", "--generations", "2",
                           "--samples", "20", *flags], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr
