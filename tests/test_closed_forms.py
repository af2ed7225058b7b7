"""The engine against closed forms of model collapse (generation t is the (t+1)-th fit).

Each assertion compares a Monte-Carlo mean over S vmapped seeds with its closed form in units of the
Monte-Carlo standard error (sample std / sqrt(S)): |z| < 4 (a two-sided 6e-5 false-alarm rate per
check, with fixed seeds so the outcome is reproducible). Each test also shows its power: a
deliberately wrong formula (an off-by-one generation, the other retention's limit) gives |z| > 4 on
the same draws. ``test_derivations_by_plain_monte_carlo`` checks the derivations themselves with a
plain numpy loop that shares no code with mixopt.

Derivations (truth N(0, 1), lambda = 0, c = (M - 1)/M):
  variance: under ``replace`` E[s_t^2 | s_{t-1}^2] = c s_{t-1}^2 (mle) or s_{t-1}^2 (unbiased), so
    E[variance_ratio_t] = c^(t+1) or 1; in d dimensions the same holds for the trace by linearity.
    At sampling temperature tau the model samples with variance tau^2 s_{t-1}^2, so under ``mle``
    E[variance_ratio_t] = c^(t+1) tau^(2t) (generation 0 fits human data: no tau).
  log det: the scatter of M samples is C^1/2 W C^1/2 with W ~ Wishart(M - 1, I) and
    E[log det W] = sum_i (psi((M - 1 - i)/2) + log 2), so under ``replace``/``mle``
    E[log_det_ratio_t] = (t + 1) (sum_i psi((M - 1 - i)/2) + d log 2 - d log M).
  mean: mu_t = mu_{t-1} + s_{t-1} z_t / sqrt(M) with z_t independent of s_{t-1}, so under ``replace``
    E[mu_t^2] = sum_{j=0..t} E[s_{j-1}^2]/M = (1 - c^(t+1)) (mle), (t + 1)/M (unbiased, known variance).
  accumulate, known variance: (t + 1) mu_t = sum_{j<=t} (mu_{j-1} + eps_j) gives
    mu_t = mu_{t-1} + eps_t/(t + 1), so E[mu_t^2] = (1/M) sum_{j=1..t+1} 1/j^2 -> pi^2/(6 M): bounded
    (Gerstgrasser et al. 2024, arXiv 2404.01413; Dey & Donoho 2024, arXiv 2410.22812).
  fresh human fraction lambda with loss weight w, known variance, ``replace`` (n_h = lambda M,
    n_s = M - n_h): mu_t = w h_t + (1 - w)(mu_{t-1} + e_t), so
    v_t = w^2/n_h + (1 - w)^2/n_s + (1 - w)^2 v_{t-1}, v_0 = 1/M.
"""
import numpy as np
import pytest
from scipy.special import digamma

from _utils import run, z_score

SEEDS = 20000
M, T = 10, 8
GENS = np.arange(T + 1)
C = (M - 1) / M


def assert_matches(samples, predicted, wrong=None):
    z = z_score(samples, predicted)
    assert np.all(np.abs(z) < 4), f"z = {np.round(z, 2)}"
    if wrong is not None:  # power: the same draws reject a deliberately wrong formula
        assert np.max(np.abs(z_score(samples, wrong))) > 4


@pytest.mark.parametrize("sampler", ["exact", "naive"])
def test_variance_ratio_mle_replace(sampler):
    out = run(SEEDS, sampler=sampler, generations=T, samples=M)
    assert_matches(out["variance_ratio"], C ** (GENS + 1), wrong=C**GENS)


@pytest.mark.parametrize("sampler", ["exact", "naive"])
def test_variance_ratio_with_sampling_temperature(sampler):
    tau = 0.9
    out = run(SEEDS, sampler=sampler, generations=T, samples=M, temperature=tau)
    assert_matches(out["variance_ratio"], C ** (GENS + 1) * tau ** (2 * GENS), wrong=C ** (GENS + 1) * tau**GENS)


def test_variance_ratio_unbiased_replace():
    out = run(SEEDS, generations=T, samples=M, estimator="unbiased")
    assert_matches(out["variance_ratio"], np.ones(T + 1), wrong=C ** (GENS + 1))


@pytest.mark.parametrize("dim", [3])
def test_multivariate_trace_and_log_det(dim):
    out = run(SEEDS, generations=T, samples=M, dim=dim)
    assert_matches(out["variance_ratio"], C ** (GENS + 1), wrong=C**GENS)
    per_fit = sum(digamma((M - 1 - i) / 2) + np.log(2) for i in range(dim)) - dim * np.log(M)
    assert_matches(out["log_det_ratio"], (GENS + 1) * per_fit, wrong=GENS * per_fit)


def test_mean_shift_replace_mle():
    out = run(SEEDS, generations=T, samples=M)
    assert_matches(out["mean_shift"] ** 2, 1 - C ** (GENS + 1), wrong=(GENS + 1) / M)


@pytest.mark.parametrize("fit,estimator", [("mean", "mle"), ("full", "unbiased")])
def test_mean_shift_replace_grows_linearly(fit, estimator):
    out = run(SEEDS, generations=T, samples=M, fit=fit, estimator=estimator)
    assert_matches(out["mean_shift"] ** 2, (GENS + 1) / M, wrong=1 - C ** (GENS + 1))


def test_mean_shift_accumulate_bounded_pi_squared_over_six():
    generations = 30
    gens = np.arange(generations + 1)
    out = run(SEEDS, generations=generations, samples=M, fit="mean", retention="accumulate")
    predicted = np.cumsum(1.0 / (gens + 1.0) ** 2) / M
    assert_matches(out["mean_shift"] ** 2, predicted, wrong=(gens + 1) / M)


@pytest.mark.parametrize("weight", [None, 0.618])
def test_fresh_fraction_with_weight_recursion(weight):
    fraction, num_h = 0.5, M // 2
    out = run(SEEDS, generations=T, samples=M, fit="mean", human_fraction=fraction, human_weight=weight)
    w = fraction if weight is None else weight
    v = [1.0 / M]
    for _ in range(T):
        v.append(w**2 / num_h + (1 - w) ** 2 / (M - num_h) + (1 - w) ** 2 * v[-1])
    wrong = [1.0 / M]
    for _ in range(T):  # forgets that the synthetic half inherits the previous error
        wrong.append(w**2 / num_h + (1 - w) ** 2 / (M - num_h))
    assert_matches(out["mean_shift"] ** 2, np.array(v), wrong=np.array(wrong))


def test_derivations_by_plain_monte_carlo():
    """The derivations above, checked by a plain numpy loop over generations (vectorised over seeds)."""
    rng = np.random.default_rng(1)
    mean, var = np.zeros(SEEDS), np.ones(SEEDS)
    known_mean, running = np.zeros(SEEDS), np.zeros(SEEDS)
    for t in range(T + 1):
        x = mean[:, None] + np.sqrt(var)[:, None] * rng.standard_normal((SEEDS, M))
        mean, var = x.mean(1), x.var(1)
        assert abs(z_score(var, C ** (t + 1))) < 4
        assert abs(z_score(mean**2, 1 - C ** (t + 1))) < 4
        # accumulate with known variance: the training mean is the mean of all batch means
        batch_mean = known_mean + rng.standard_normal(SEEDS) / np.sqrt(M)
        running += batch_mean
        known_mean = running / (t + 1)
        predicted = np.sum(1.0 / np.arange(1, t + 2) ** 2) / M
        assert abs(z_score(known_mean**2, predicted)) < 4
