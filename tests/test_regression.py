"""The regression family against the published replace and accumulate test-error formulas.

Tolerance: Monte-Carlo mean over S = 20000 fixed seeds against the closed form, |z| < 4 with the
standard error from the sample std (as in test_closed_forms); each test shows a wrong formula fails.

Derivations (lambda = 0, least squares, label noise sigma, e_t = beta_hat_t - beta*, test_error = |e_t|^2):
  Each fit on labels from beta_hat_{t-1} gives beta_hat_{t-1} + u_t with u_t = (X^T X)^-1 X^T eps_t,
  E[|u_t|^2 | X] = sigma^2 tr((X^T X)^-1), and E tr((X^T X)^-1) = d / (M - d - 1) for Gaussian inputs.
  replace: e_t = sum_{s<=t} u_s, so E[test_error_t] = (t + 1) sigma^2 d / (M - d - 1) (fresh design)
    and (t + 1) sigma^2 tr((X_0^T X_0)^-1) (fixed design, X_0 known): linear growth (Dohmatob, Feng &
    Kempe 2024, arXiv 2402.07712; Gerstgrasser et al. 2024, arXiv 2404.01413).
  accumulate, fixed design: beta_hat_t = (1/(t+1)) sum_{s<=t} (beta_hat_{s-1} + u_s) gives
    e_t = e_{t-1} + u_t/(t + 1), so E[test_error_t] = sigma^2 tr((X_0^T X_0)^-1) sum_{k=1..t+1} 1/k^2
    <= pi^2/6 times the first error: bounded (Gerstgrasser et al. 2024, Theorem 1).
"""
import subprocess
import sys

import numpy as np
import pytest
from scipy.stats import ks_2samp

from _utils import run, z_score
from mixopt.families.regression import design_matrix, true_beta

SEEDS, D, M, T, SIGMA = 20000, 4, 20, 6, 0.7
GENS = np.arange(T + 1)
X0 = design_matrix(D, M)
TRACE_FIXED = np.trace(np.linalg.inv(X0.T @ X0))


def assert_matches(samples, predicted, wrong):
    z = z_score(samples, predicted)
    assert np.all(np.abs(z) < 4), f"z = {np.round(z, 2)}"
    assert np.max(np.abs(z_score(samples, wrong))) > 4


@pytest.mark.parametrize("sampler", ["exact", "naive"])
def test_replace_fresh_design_grows_linearly(sampler):
    out = run(SEEDS, sampler=sampler, family="regression", dim=D, noise=SIGMA, samples=M, generations=T)
    per_fit = SIGMA**2 * D / (M - D - 1)
    assert_matches(out["test_error"], (GENS + 1) * per_fit, wrong=GENS * per_fit)
    np.testing.assert_allclose(out["kl"], out["test_error"] / (2 * SIGMA**2), rtol=1e-6)


@pytest.mark.parametrize("sampler", ["exact", "naive"])
def test_fixed_design_replace_and_accumulate(sampler):
    per_fit = SIGMA**2 * TRACE_FIXED
    bounded = per_fit * np.cumsum(1.0 / (GENS + 1) ** 2)
    replace = run(SEEDS, sampler=sampler, family="regression", dim=D, noise=SIGMA, samples=M, generations=T,
                  design="fixed")
    assert_matches(replace["test_error"], (GENS + 1) * per_fit, wrong=bounded)
    accumulate = run(SEEDS, sampler=sampler, family="regression", dim=D, noise=SIGMA, samples=M, generations=T,
                     design="fixed", retention="accumulate")
    assert_matches(accumulate["test_error"], bounded, wrong=per_fit * np.cumsum(1.0 / (GENS + 1)))


def test_derivation_by_plain_monte_carlo():
    """The fixed-design accumulate formula against a numpy least-squares loop sharing no mixopt code."""
    rng = np.random.default_rng(3)
    beta_star = np.full(D, 1 / np.sqrt(D))
    seeds = 4000
    labels_from = np.tile(beta_star, (seeds, 1))
    stacked_y = []
    errors = []
    for _ in range(T + 1):
        y = labels_from @ X0.T + SIGMA * rng.standard_normal((seeds, M))  # (seeds, M)
        stacked_y.append(y)
        x_all = np.concatenate([X0] * len(stacked_y))
        beta = np.linalg.lstsq(x_all, np.concatenate(stacked_y, axis=1).T, rcond=None)[0].T
        errors.append(((beta - beta_star) ** 2).sum(1))
        labels_from = beta
    predicted = SIGMA**2 * TRACE_FIXED * np.cumsum(1.0 / (GENS + 1) ** 2)
    assert np.all(np.abs(z_score(np.stack(errors, 1), predicted)) < 4)


@pytest.mark.parametrize("design", ["fresh", "fixed"])
def test_exact_and_naive_agree_with_human_data_and_weights(design):
    case = dict(family="regression", dim=D, noise=SIGMA, samples=M, generations=4, design=design,
                retention="window", window=2, human_fraction=0.35, human_weight=0.6)
    a = run(4000, seed=1, sampler="exact", **case)
    b = run(4000, seed=2, sampler="naive", **case)
    assert min(ks_2samp(a["test_error"][:, t], b["test_error"][:, t]).pvalue for t in (1, 2, 4)) > 1e-4


def ridge_replace_error(ridge, generations):
    """E[test_error_t] of a ridge fit on the fixed design under replace (lambda = 0).

    beta_t = (A/M + r I)^-1 (A beta_{t-1} + sigma X0^T eps_t) / M with A = X0^T X0 and beta_{-1} = beta*:
    the mean follows m_t = K m_{t-1} with K = (A/M + r I)^-1 A/M, the covariance
    C_t = K C_{t-1} K^T + sigma^2 G A G with G = (A/M + r I)^-1 / M; E|beta_t - beta*|^2 = |m_t - beta*|^2 + tr C_t.
    """
    beta_star = true_beta(D)
    inverse = np.linalg.inv(X0.T @ X0 / M + ridge * np.eye(D))
    gain, noise_cov = inverse @ X0.T @ X0 / M, SIGMA**2 * inverse @ X0.T @ X0 @ inverse / M**2
    mean, cov, out = beta_star, np.zeros((D, D)), []
    for _ in range(generations + 1):
        mean, cov = gain @ mean, gain @ cov @ gain.T + noise_cov
        out.append(np.sum((mean - beta_star) ** 2) + np.trace(cov))
    return np.array(out)


@pytest.mark.parametrize("sampler", ["exact", "naive"])
def test_ridge_matches_its_closed_form(sampler):
    """The shrinkage compounds: |z| < 4 over 20000 seeds; the same formula at r / 2 is rejected."""
    ridge = 0.5
    out = run(SEEDS, sampler=sampler, family="regression", dim=D, noise=SIGMA, samples=M, generations=T,
              design="fixed", ridge=ridge)
    assert_matches(out["test_error"], ridge_replace_error(ridge, T), wrong=ridge_replace_error(ridge / 2, T))


@pytest.mark.parametrize("flags,message", [
    (["--dim", "0"], "dim must be an integer >= 1"),
    (["--noise", "0"], "noise must be a number > 0"),
    (["--design", "random"], "design must be one of fresh, fixed"),
    (["--ridge", "-1"], "ridge must be a number >= 0"),
    (["--dim", "30", "--samples", "20"], "needs scenario.samples > dim + 1"),
])
def test_bad_regression_parameters_are_one_line_errors(flags, message):
    proc = subprocess.run([sys.executable, "-m", "mixopt", "simulate", "--family", "regression", "--seeds", "2",
                           *flags], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr
