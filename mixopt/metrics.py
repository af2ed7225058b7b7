"""Distances between Gaussians, shared by the families that fit Gaussians.

All functions take full covariance matrices and work for any dimension ``d`` (``d = 1`` is the
univariate case). They are pure jnp and differentiable.

References:
  Kullback-Leibler divergence between multivariate normals, e.g. Pardo, *Statistical Inference
  Based on Divergence Measures* (2006), eq. 1.6.
  Wasserstein-2 distance between Gaussians: Dowson & Landau (1982); Givens & Shortt (1984).
"""
import jax.numpy as jnp
import jax.scipy.linalg as jsl


def log_det(cov):
    """log det of a positive-definite matrix (NaN when it is not: the caller reports it)."""
    chol = jnp.linalg.cholesky(cov)
    return 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol)))


def gaussian_kl(mean_p, cov_p, mean_q, cov_q):
    """KL(N(mean_p, cov_p) || N(mean_q, cov_q))."""
    dim = mean_p.shape[-1]
    chol_q = jnp.linalg.cholesky(cov_q)
    trace_term = jnp.trace(jsl.cho_solve((chol_q, True), cov_p))
    delta = mean_q - mean_p
    maha = delta @ jsl.cho_solve((chol_q, True), delta)
    return 0.5 * (trace_term + maha - dim + log_det(cov_q) - log_det(cov_p))


def _psd_sqrt(cov):
    eigval, eigvec = jnp.linalg.eigh(cov)
    return (eigvec * jnp.sqrt(jnp.clip(eigval, 0.0))[None, :]) @ eigvec.T


def gaussian_w2(mean_p, cov_p, mean_q, cov_q):
    """Wasserstein-2 distance: ||m_p - m_q||^2 + tr(C_p + C_q - 2 (C_p^1/2 C_q C_p^1/2)^1/2)."""
    root_p = _psd_sqrt(cov_p)
    cross = jnp.linalg.eigvalsh(root_p @ cov_q @ root_p)
    bures = jnp.trace(cov_p) + jnp.trace(cov_q) - 2.0 * jnp.sum(jnp.sqrt(jnp.clip(cross, 0.0)))
    sq = jnp.sum((mean_p - mean_q) ** 2) + bures
    return jnp.sqrt(jnp.clip(sq, 0.0))
