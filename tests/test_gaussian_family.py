"""The Gaussian family's pieces against independent computations (numpy, scipy)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings, strategies as st

from _utils import z_score
from mixopt import metrics as dist
from mixopt.families import gaussian
from mixopt.families.gaussian import standard_wishart
from mixopt.montecarlo import seed_keys


@settings(max_examples=40, deadline=None)
@given(n_a=st.integers(0, 30), n_b=st.integers(0, 30), dim=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_combine_equals_stats_of_the_union(n_a, n_b, dim, seed):
    family = gaussian(dim=dim)
    rng = np.random.default_rng(seed)
    x = rng.normal(3.0, 2.0, (n_a + n_b, dim))
    w = rng.uniform(0.0, 1.0, n_a + n_b)
    merged = family.combine(family.data_stats(x[:n_a], w[:n_a]), family.data_stats(x[n_a:], w[n_a:]))
    whole = family.data_stats(x, w)
    for got, want in zip(merged, whole):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("estimator,ddof", [("mle", 0), ("unbiased", 1)])
def test_weighted_fit_matches_numpy_weighted_covariance(estimator, ddof):
    family = gaussian(dim=2, estimator=estimator)
    rng = np.random.default_rng(0)
    human, synth = rng.normal(0, 1, (7, 2)), rng.normal(1, 2, (13, 2))
    weight = 0.8  # share of the loss weight on the 7 human samples
    params = family.fit(None, family.data_stats(human, np.ones(7)), family.data_stats(synth, np.ones(13)), weight)
    x = np.concatenate([human, synth])
    w = np.concatenate([np.full(7, weight / 7), np.full(13, (1 - weight) / 13)])
    np.testing.assert_allclose(params.mean, w @ x, rtol=1e-12)
    np.testing.assert_allclose(params.cov, np.cov(x.T, aweights=w, ddof=ddof), rtol=1e-12)


def test_fit_recovers_the_truth_from_many_samples():
    family = gaussian(dim=3)
    x = family.sample(jax.random.key(0), family.truth, 200_000)
    params = family.fit(None, family.data_stats(x, jnp.ones(len(x))), family.empty_stats(), None)
    # sd of a mean coordinate: 1/sqrt(n) = 0.0022; of a covariance entry: ~sqrt(2/n) = 0.0032
    np.testing.assert_allclose(params.mean, np.zeros(3), atol=5 * 0.0023)
    np.testing.assert_allclose(params.cov, np.eye(3), atol=5 * 0.0032)


@pytest.mark.parametrize("df,dim", [(1.0, 3), (2.0, 3), (9.0, 3), (0.0, 2), (-1.0, 2)])
def test_bartlett_wishart_mean_and_rank(df, dim):
    """E[W] = max(df, 0) I and rank W = min(df, dim) for W ~ Wishart(df, I), singular df included
    (20000 draws, |z| < 4 per entry with the Monte-Carlo standard error)."""
    draws = np.asarray(jax.vmap(lambda k: standard_wishart(k, df, dim))(seed_keys(0, 20000)))
    expected = max(df, 0.0) * np.eye(dim)
    if df <= 0:
        np.testing.assert_array_equal(draws, 0.0)
        return
    assert np.all(np.abs(z_score(draws, expected)) < 4)
    ranks = np.linalg.matrix_rank(draws[:100], tol=1e-9)
    assert np.all(ranks == min(int(df), dim))
    # power: the next degree of freedom is rejected on the same draws
    assert np.max(np.abs(z_score(draws, (df + 1) * np.eye(dim)))) > 4


def test_kl_and_w2_against_scipy():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
    cov_p, cov_q = a @ a.T + np.eye(3), b @ b.T + 0.5 * np.eye(3)
    mean_p, mean_q = rng.normal(size=3), rng.normal(size=3)
    inv_q = np.linalg.inv(cov_q)
    kl = 0.5 * (np.trace(inv_q @ cov_p) + (mean_q - mean_p) @ inv_q @ (mean_q - mean_p) - 3
                + np.linalg.slogdet(cov_q)[1] - np.linalg.slogdet(cov_p)[1])
    np.testing.assert_allclose(dist.gaussian_kl(mean_p, cov_p, mean_q, cov_q), kl, rtol=1e-10)
    root = scipy.linalg.sqrtm(cov_p)
    w2 = np.sqrt(np.sum((mean_p - mean_q) ** 2)
                 + np.trace(cov_p + cov_q - 2 * np.real(scipy.linalg.sqrtm(root @ cov_q @ root))))
    np.testing.assert_allclose(dist.gaussian_w2(mean_p, cov_p, mean_q, cov_q), w2, rtol=1e-8)


def test_univariate_closed_forms_without_lapack():
    """At d = 1 the distances are scalar arithmetic (no LAPACK call, for start-up): the univariate KL and
    W2 to rounding, NaN where a variance is not positive (as the Cholesky factor gives), and the same
    gradient as the factorisations'."""
    mean_p, var_p, mean_q, var_q = 0.3, 2.0, -0.4, 0.7
    kl = 0.5 * (var_p / var_q + (mean_q - mean_p) ** 2 / var_q - 1 + np.log(var_q / var_p))
    w2 = np.sqrt((mean_p - mean_q) ** 2 + (np.sqrt(var_p) - np.sqrt(var_q)) ** 2)
    args = (jnp.array([mean_p]), jnp.array([[var_p]]), jnp.array([mean_q]), jnp.array([[var_q]]))
    np.testing.assert_allclose(dist.gaussian_kl(*args), kl, rtol=1e-12)
    np.testing.assert_allclose(dist.gaussian_w2(*args), w2, rtol=1e-12)
    assert np.isnan(dist.log_det(jnp.array([[-1.0]]))) and np.isnan(dist.log_det(jnp.array([[0.0]])))
    # batched (two 1 x 1 factors), vectors and matrices: the factorisations' numbers
    chol = dist.cholesky(jnp.array([[[2.0]], [[3.0]]]))
    vector, matrix = jnp.array([[1.0], [2.0]]), jnp.array([[[1.0, -4.0]], [[2.0, 0.5]]])
    for b in (vector, matrix):
        var = np.array([2.0, 3.0]).reshape((2,) + (1,) * (b.ndim - 1))
        np.testing.assert_allclose(dist.cho_solve(chol, b), b / var, rtol=1e-14)
        np.testing.assert_allclose(dist.solve_lower(chol, b), b / np.sqrt(var), rtol=1e-14)
    scalar = jax.grad(lambda v: dist.gaussian_kl(args[0], args[1], args[2], v[None, None]))(jnp.array(var_q))
    np.testing.assert_allclose(scalar, 0.5 * (1 / var_q - var_p / var_q**2 - (mean_q - mean_p) ** 2 / var_q**2),
                               rtol=1e-12)
