"""Linear regression family: the setting with the best-known theory of model collapse.

Inputs x ~ N(0, I_d); human labels y = x^T beta* + sigma e from the true coefficients (norm 1),
synthetic labels y = x^T beta_hat_{t-1} + sigma e from the previous model. Each generation fits
ordinary least squares (optionally ridge) on its training set. Under ``replace`` the label noise of
every generation adds up (test error grows linearly); under ``accumulate`` it is averaged away and
the test error stays bounded (Gerstgrasser et al. 2024, arXiv 2404.01413; Dohmatob, Feng & Kempe
2024, arXiv 2402.07712).

``design = "fresh"`` draws new inputs for every batch; ``design = "fixed"`` reuses one design
matrix X_0 (M x d, drawn once from ``design_seed``, the same for every Monte-Carlo seed: the
randomness is the label noise, as in Gerstgrasser et al.'s fixed-design analysis). Within a batch
the human samples take rows [0, n_h) of X_0 and the synthetic ones rows [n_h, M).

A sample is one row ``[x_1..x_d, y]``. Sufficient statistics: the weighted count, X^T W X and X^T W y.
Exact sampler: fresh design X^T X ~ Wishart(n, I) (Bartlett) and X^T e | X ~ N(0, X^T X); fixed
design: the Gram of the rows in play from a cumulative table of X_0, and the same normal.
"""
from typing import Callable, NamedTuple

import jax
import jax.scipy.stats
import jax.numpy as jnp
import numpy as np

from mixopt.errors import ConfigError
from mixopt.families import streams
from mixopt.families.base import Family
from mixopt.families.gaussian import bartlett_factor

DESIGNS = ("fresh", "fixed")


class RegressionParams(NamedTuple):
    beta: jax.Array  # (d,)
    synthetic: jax.Array  # () 0 for the truth, 1 for a fitted model (which rows of a fixed design it labels)


class RegressionStats(NamedTuple):
    count: jax.Array  # () weighted sample count
    gram: jax.Array  # (d, d) X^T W X
    xty: jax.Array  # (d,) X^T W y


def true_beta(dim: int) -> np.ndarray:
    """The true coefficients: all equal, norm 1."""
    return np.full(dim, 1.0 / np.sqrt(dim))


def design_matrix(dim: int, num_samples: int, design_seed: int = 0) -> np.ndarray:
    """The fixed design X_0 (M x d) of ``design = "fixed"``: rows iid N(0, I_d) from ``design_seed``, drawn in
    float32 whatever the precision (a float64 draw is another design: the same seed gave tr((X^T X)^-1) of
    rows 0..25 0.211 in float64 against 0.271 in float32)."""
    return np.asarray(jax.random.normal(jax.random.key(design_seed), (num_samples, dim), jnp.float32), np.float64)


class FixedDesign(NamedTuple):
    """One design for every batch and seed (``design = "fixed"``): its rows and the Gram of the rows
    a batch takes, ``grams(synthetic, count) -> (gram, Cholesky factor)``. The truth labels rows [0, n),
    a model the last n rows [M - n, M); a fractional count (relaxed) weighs its boundary row by its
    fraction (linear interpolation of a cumulative table, so the cost does not grow with M)."""
    x: jax.Array  # (M, d)
    grams: Callable

    def rows(self, z):
        """The design's rows for a batch of noise ``z``, which must have M rows."""
        if z.shape[0] != self.x.shape[0]:
            raise ConfigError(f"design = fixed draws batches of M = {self.x.shape[0]} rows, asked for {z.shape[0]}")
        return self.x


def fixed_design(dim: int, num_samples: int, design_seed: int, dtype) -> FixedDesign:
    """The fixed design X_0 of ``design_matrix`` with its cumulative Gram table."""
    x0 = design_matrix(dim, num_samples, design_seed)
    outer = np.einsum("ni,nj->nij", x0, x0)
    cum_gram = jnp.asarray(np.concatenate([np.zeros((1, dim, dim)), np.cumsum(outer, 0)]), dtype)

    def at(position):
        low = jnp.clip(jnp.floor(position), 0, num_samples - 1).astype(jnp.int32)
        frac = jnp.clip(position - low, 0.0, 1.0)
        return cum_gram[low] + frac * (cum_gram[low + 1] - cum_gram[low])

    def grams(synthetic, count):
        start = jnp.where(synthetic > 0, num_samples - count, 0.0)
        gram = at(start + count) - at(start)
        jitter = 1e-9 * (jnp.trace(gram) / dim + 1.0)  # Cholesky of a PSD Gram that may be singular
        return gram, jnp.linalg.cholesky(gram + jitter * jnp.eye(dim, dtype=dtype))

    return FixedDesign(jnp.asarray(x0, dtype), grams)


def _number(name, value, positive=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (value > 0 if positive else value >= 0):
        raise ConfigError(f"scenario.truth.{name} must be a number {'>' if positive else '>='} 0, got {value!r}")


def empty_moments(dim: int, dtype) -> RegressionStats:
    return RegressionStats(jnp.zeros((), dtype), jnp.zeros((dim, dim), dtype), jnp.zeros(dim, dtype))


def combine_moments(a: RegressionStats, b: RegressionStats) -> RegressionStats:
    return RegressionStats(a.count + b.count, a.gram + b.gram, a.xty + b.xty)


def weighted_moments(human: RegressionStats, synth: RegressionStats, human_weight):
    """(n, X^T W X, X^T W y) of the training set: plain pooling (``human_weight`` None), or the human
    samples carrying ``human_weight`` of the loss weight and the synthetic ones the rest, at total count n."""
    total = human.count + synth.count
    if human_weight is None:
        return total, human.gram + synth.gram, human.xty + synth.xty
    w = jnp.where(synth.count > 0, human_weight, 1.0)
    w = jnp.where(human.count > 0, w, 0.0)
    safe_h = jnp.where(human.count > 0, human.count, 1.0)
    safe_s = jnp.where(synth.count > 0, synth.count, 1.0)
    return (total, total * (w * human.gram / safe_h + (1 - w) * synth.gram / safe_s),
            total * (w * human.xty / safe_h + (1 - w) * synth.xty / safe_s))


def regression(*, dim: int = 10, noise: float = 1.0, design: str = "fresh", ridge: float = 0.0,
               design_seed: int = 0, num_samples: int = 100) -> Family:
    """Makes the linear regression family.

    Args:
      dim: static input dimension d >= 1.
      noise: label noise sigma > 0 (human and synthetic labels alike).
      design: ``"fresh"`` inputs for every batch, or ``"fixed"``: generation 0's inputs reused.
      ridge: penalty r >= 0 of the fit beta = (X^T W X / n + r I)^-1 X^T W y / n (0: least squares,
        which needs M > d + 1 samples for a finite expected test error).
      design_seed: integer seed of the fixed design.
      num_samples: M, the rows of the fixed design (set from the scenario by ``make_family``).

    Raises:
      ConfigError: a parameter out of range.
    """
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ConfigError(f"scenario.truth.dim must be an integer >= 1, got {dim!r}")
    _number("noise", noise, positive=True)
    _number("ridge", ridge)
    if design not in DESIGNS:
        raise ConfigError(f"scenario.truth.design must be one of {', '.join(DESIGNS)}, got {design!r}")
    if isinstance(design_seed, bool) or not isinstance(design_seed, int) or design_seed < 0:
        raise ConfigError(f"scenario.truth.design_seed must be an integer >= 0, got {design_seed!r}")
    if ridge == 0 and num_samples <= dim + 1:
        raise ConfigError(f"regression with ridge = 0 needs scenario.samples > dim + 1 = {dim + 1}, "
                          f"got {num_samples} (or set scenario.truth.ridge > 0)")

    dtype = jnp.result_type(float)
    beta_star = jnp.asarray(true_beta(dim), dtype)
    truth = RegressionParams(beta_star, jnp.zeros((), dtype))
    fixed = design == "fixed"
    if fixed:
        table = fixed_design(dim, num_samples, design_seed, dtype)

    def noise_fn(key, num):
        return streams.normal(key, (num, dim + 1))

    def transform(params, z):
        x = table.rows(z) if fixed else z[:, :dim]
        y = x @ params.beta + noise * z[:, dim]
        return jnp.concatenate([x, y[:, None]], axis=1)

    def sample(key, params, num):
        return transform(params, noise_fn(key, num))

    def data_stats(rows, weights):
        weights = jnp.broadcast_to(jnp.asarray(weights, dtype), rows.shape[:1])
        x, y = rows[:, :dim], rows[:, dim]
        xw = x * weights[:, None]
        return RegressionStats(jnp.sum(weights), xw.T @ x, xw.T @ y)

    def sample_stats(key, params, count):
        key_gram, key_noise = jax.random.split(key)
        if fixed:
            gram, factor = table.grams(params.synthetic, count)
        else:
            factor = bartlett_factor(key_gram, count, dim)
            gram = factor @ factor.T
        xte = factor @ jax.random.normal(key_noise, (dim,), dtype)  # X^T e ~ N(0, X^T X)
        return RegressionStats(count, gram, gram @ params.beta + noise * xte)

    def fit_fn(key, human, synth, human_weight):
        del key
        total, gram, xty = weighted_moments(human, synth, human_weight)
        safe_total = jnp.where(total > 0, total, 1.0)
        beta = jnp.linalg.solve(gram / safe_total + ridge * jnp.eye(dim, dtype=dtype), xty / safe_total)
        return RegressionParams(beta, jnp.ones((), dtype))

    def metrics(params):
        error = jnp.sum((params.beta - beta_star) ** 2)
        # predictive KL(truth || model) of y | x at the known noise level, averaged over x ~ N(0, I)
        return {"test_error": error, "kl": error / (2 * noise**2)}

    return Family(
        name="regression",
        truth=truth,
        sample=sample,
        noise=noise_fn,
        transform=transform,
        data_stats=data_stats,
        sample_stats=sample_stats,
        empty_stats=lambda: empty_moments(dim, dtype),
        combine=combine_moments,
        fit=fit_fn,
        metrics=metrics,
        metric_names=("test_error", "kl"),
        # the label's conditional log density: a verifier judges the answer y to the question x
        log_prob=lambda params, rows: jax.scipy.stats.norm.logpdf(rows[:, dim], rows[:, :dim] @ params.beta, noise),
    )
