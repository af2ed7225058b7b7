"""Distances between Gaussians, shared by the families that fit Gaussians.

All functions take full covariance matrices and work for any dimension ``d`` (``d = 1`` is the
univariate case). They are pure jnp and differentiable. At ``d = 1`` the factorisations are written
as scalar arithmetic (``cholesky``, ``eigh``...): the same numbers without LAPACK calls, whose lowering
(and SciPy's BLAS import behind it) was about a tenth of a small CLI run's start-up.

References:
  Kullback-Leibler divergence between multivariate normals, e.g. Pardo, *Statistical Inference
  Based on Divergence Measures* (2006), eq. 1.6.
  Wasserstein-2 distance between Gaussians: Dowson & Landau (1982); Givens & Shortt (1984).
"""
import jax.numpy as jnp
import jax.scipy.linalg as jsl


def _scalar(a) -> bool:
    return a.shape[-1] == 1


def cholesky(cov):
    """Lower Cholesky factor; NaN where ``cov`` is not positive definite (as ``jnp.linalg.cholesky``)."""
    if _scalar(cov):
        return jnp.where(cov > 0, jnp.sqrt(cov), jnp.nan)  # its gradient too is NaN where cov <= 0
    return jnp.linalg.cholesky(cov)


def cho_solve(chol, b):
    """``cov^-1 b`` from ``cov``'s lower Cholesky factor (``b``: a vector or a matrix)."""
    if _scalar(chol):
        inverse = _inverse(chol, b)
        return b * inverse * inverse
    return jsl.cho_solve((chol, True), b)


def solve_lower(chol, b):
    """``chol^-1 b`` for a lower-triangular ``chol``."""
    if _scalar(chol):
        return b * _inverse(chol, b)
    return jsl.solve_triangular(chol, b, lower=True)


def _inverse(chol, b):
    """1 / L of a (..., 1, 1) factor, shaped to multiply ``b`` (a (..., 1) vector or a (..., 1, k)
    matrix): LAPACK's triangular solve multiplies by the inverse, so the numbers are its own."""
    return 1.0 / (chol[..., 0] if b.ndim < chol.ndim else chol)


def eigh(a):
    """Eigenvalues (ascending) and eigenvectors of a symmetric matrix."""
    if _scalar(a):
        return a[..., 0], jnp.ones_like(a)
    return jnp.linalg.eigh(a)


def log_det(cov):
    """log det of a positive-definite matrix (NaN when it is not: the caller reports it)."""
    chol = cholesky(cov)
    return 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol)))


def gaussian_kl(mean_p, cov_p, mean_q, cov_q):
    """KL(N(mean_p, cov_p) || N(mean_q, cov_q))."""
    dim = mean_p.shape[-1]
    chol_q = cholesky(cov_q)
    trace_term = jnp.trace(cho_solve(chol_q, cov_p))
    delta = mean_q - mean_p
    maha = delta @ cho_solve(chol_q, delta)
    return 0.5 * (trace_term + maha - dim + log_det(cov_q) - log_det(cov_p))


def _psd_sqrt(cov):
    eigval, eigvec = eigh(cov)
    return (eigvec * jnp.sqrt(jnp.clip(eigval, 0.0))[None, :]) @ eigvec.T


def gaussian_w2(mean_p, cov_p, mean_q, cov_q):
    """Wasserstein-2 distance: ||m_p - m_q||^2 + tr(C_p + C_q - 2 (C_p^1/2 C_q C_p^1/2)^1/2)."""
    root_p = _psd_sqrt(cov_p)
    cross = eigh(root_p @ cov_q @ root_p)[0]
    bures = jnp.trace(cov_p) + jnp.trace(cov_q) - 2.0 * jnp.sum(jnp.sqrt(jnp.clip(cross, 0.0)))
    sq = jnp.sum((mean_p - mean_q) ** 2) + bures
    return jnp.sqrt(jnp.clip(sq, 0.0))
