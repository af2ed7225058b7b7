"""The learner: a linear model trained from zero by gradient descent under a step budget (issue 29).

Unlike the other families, generation 0 need not be converged: a learner that trains for a budget of
steps S on n samples stops early, so more data (more steps under ``compute = "epochs"``), even its own
synthetic data, can help, and repeated data are worth less than fresh data.

The world: inputs x ~ N(0, Lambda) with a power-law spectrum lambda_j = j^-a (``spectrum`` a >= 0; 0 is
isotropic), labels y = <w*, x> + sigma e with a power-law signal lambda_j w*_j^2 ∝ j^-b (``signal`` b),
scaled so that the signal's variance <w*, Lambda w*> is 1. Synthetic labels come from the previous
generation's model with fresh label noise, as in ``regression``.

Training: full-batch gradient descent from w = 0 on the (weighted) mean squared loss with step size
eta (``lr``), for S steps: S = ``epochs`` x n / ``batch`` (``compute = "epochs"``: the steps an SGD run of
that many epochs with batches of ``batch`` takes; more data, more steps) or S = ``steps``
(``compute = "steps"``: compute-bound). With G = X^T W X / n = V diag(mu) V^T and c = X^T W y / n,

    w_S = V diag((1 - (1 - eta mu_j)^S) / mu_j) V^T c

(the closed form of S steps: each eigendirection shrunk by 1 - (1 - eta mu_j)^S; S continuous, so the
relaxed path differentiates through it). eta mu_j > 1 would overshoot; the factor is clipped at 0
there (one step reaches that direction's optimum), so keep eta below 1 / mu_max.

Sufficient statistics: the weighted count, X^T W X and X^T W y (``regression``'s); the exact sampler
draws X^T X ~ Wishart(n, Lambda) and X^T e ~ N(0, X^T X). ``design = "fixed"`` reuses one design (rows
as ``regression``'s fixed design, scaled by Lambda^1/2): only the labels are random, as in Gerstgrasser
et al.'s analysis, and the exact sampler takes the Gram of the rows in play from a cumulative table.

Metrics: ``test_error`` (the excess risk E<w - w*, x>^2 = (w - w*)^T Lambda (w - w*)), ``loss`` (the
population squared loss, test_error + sigma^2: what a learning curve plots), ``kl`` (the predictive
KL of y | x at the known noise, test_error / 2 sigma^2).
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.stats
import numpy as np

from mixopt.errors import ConfigError
from mixopt.families import streams
from mixopt.families.base import Family, traced
from mixopt.families.gaussian import bartlett_factor
from mixopt.families.regression import (DESIGNS, RegressionStats, combine_moments, empty_moments, fixed_design,
                                       weighted_moments)

COMPUTE = ("epochs", "steps")


class LearnerParams(NamedTuple):
    w: jax.Array  # (d,)
    synthetic: jax.Array  # () 0 for the truth, 1 for a fitted model (which rows of a fixed design it labels)


def spectrum_of(dim: int, spectrum) -> np.ndarray:
    """The feature variances lambda_j = j^-a, j = 1..d (numpy float64; a JAX float array if ``spectrum`` is traced)."""
    xp = jnp if traced(spectrum) else np
    return xp.arange(1, dim + 1, dtype=jnp.result_type(float) if traced(spectrum) else np.float64) ** -spectrum


def true_weights(dim: int, spectrum, signal) -> np.ndarray:
    """w* with lambda_j w*_j^2 ∝ j^-b, all positive, and <w*, Lambda w*> = 1."""
    xp = jnp if traced(spectrum) or traced(signal) else np
    variances = spectrum_of(dim, spectrum)
    power = xp.arange(1, dim + 1, dtype=jnp.result_type(float) if xp is jnp else np.float64) ** -signal
    return xp.sqrt(power / power.sum() / variances)


def steps_for(count, *, compute: str, epochs: float, batch: float, steps: float):
    """S, the gradient steps a generation trains for on ``count`` samples."""
    return epochs * count / batch if compute == "epochs" else steps + 0.0 * count


def gd_factor(mu, lr, num_steps):
    """(1 - (1 - eta mu)^S) / mu, and eta S where mu = 0 (its limit); the base clipped into [0, 1]."""
    base = jnp.clip(1.0 - lr * mu, 0.0, 1.0)
    safe_mu = jnp.where(mu > 1e-12, mu, 1.0)
    shrunk = -jnp.expm1(num_steps * jnp.log(jnp.maximum(base, 1e-30))) / safe_mu
    return jnp.where(mu > 1e-12, shrunk, lr * num_steps)


def _check(name, value, low, *, integer=False, strict=False):
    if traced(value):  # a key a calibration fits: its range is checked by the measurements file
        return
    ok = not isinstance(value, bool) and isinstance(value, int if integer else (int, float))
    if not ok or (value <= low if strict else value < low):
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"scenario.truth.{name} must be {kind} {'>' if strict else '>='} {low}, got {value!r}")


def learner(*, dim: int = 20, spectrum: float = 1.0, signal: float = 1.0, noise: float = 0.5, lr: float = 0.5,
            compute: str = "epochs", epochs: float = 1.0, batch: float = 10.0, steps: float = 100.0,
            design: str = "fresh", design_seed: int = 0, num_samples: int = 100) -> Family:
    """Makes the learner family (module docstring). Every number but ``dim`` may be a traced JAX value
    (``mixopt.calibration`` fits them without compiling a program per candidate).

    Args:
      dim: static number of features d >= 1.
      spectrum: a >= 0, the feature variances j^-a.
      signal: b >= 0, the signal per direction lambda_j w*_j^2 ∝ j^-b.
      noise: label noise sigma > 0.
      lr: the step size eta > 0 (keep eta below 1 / mu_max: about 1 / (1 + sqrt(d / n))^2 at a = 0).
      compute: ``"epochs"`` (S = epochs n / batch) or ``"steps"`` (S = steps).
      epochs, batch, steps: the step budget (> 0).
      design: ``"fresh"`` inputs for every batch, or ``"fixed"``: one design of M rows (from
        ``design_seed``, the same for every seed) reused by every batch, as ``regression``'s.
      design_seed: integer seed of the fixed design.
      num_samples: M, the rows of the fixed design (set from the scenario by ``make_family``).

    Raises:
      ConfigError: a parameter out of range.
    """
    _check("dim", dim, 1, integer=True)
    for name, value in (("spectrum", spectrum), ("signal", signal)):
        _check(name, value, 0.0)
    for name, value in (("noise", noise), ("lr", lr), ("epochs", epochs), ("batch", batch), ("steps", steps)):
        _check(name, value, 0.0, strict=True)
    if compute not in COMPUTE:
        raise ConfigError(f"scenario.truth.compute must be one of {', '.join(COMPUTE)}, got {compute!r}")
    if design not in DESIGNS:
        raise ConfigError(f"scenario.truth.design must be one of {', '.join(DESIGNS)}, got {design!r}")
    _check("design_seed", design_seed, 0, integer=True)

    dtype = jnp.result_type(float)
    variances = jnp.asarray(spectrum_of(dim, spectrum), dtype)
    scale = jnp.sqrt(variances)
    truth = LearnerParams(jnp.asarray(true_weights(dim, spectrum, signal), dtype), jnp.zeros((), dtype))
    fixed = design == "fixed"
    if fixed:  # standard normal rows, scaled by Lambda^1/2 where used (the spectrum may be traced)
        table = fixed_design(dim, num_samples, design_seed, dtype)

    def noise_fn(key, num):
        return streams.normal(key, (num, dim + 1))

    def transform(params, z):
        x = (table.rows(z) if fixed else z[:, :dim]) * scale[None, :]
        y = x @ params.w + noise * z[:, dim]
        return jnp.concatenate([x, y[:, None]], axis=1)

    def data_stats(rows, weights):
        weights = jnp.broadcast_to(jnp.asarray(weights, dtype), rows.shape[:1])
        x, y = rows[:, :dim], rows[:, dim]
        xw = x * weights[:, None]
        return RegressionStats(jnp.sum(weights), xw.T @ x, xw.T @ y)

    def sample_stats(key, params, count):
        key_gram, key_noise = jax.random.split(key)
        if fixed:
            _, factor = table.grams(params.synthetic, count)
        else:
            factor = bartlett_factor(key_gram, count, dim)  # a Wishart(n, I) factor
        factor = scale[:, None] * factor  # Lambda^1/2 (X^T X) Lambda^1/2
        gram = factor @ factor.T
        xte = factor @ jax.random.normal(key_noise, (dim,), dtype)  # X^T e ~ N(0, X^T X)
        return RegressionStats(count, gram, gram @ params.w + noise * xte)

    def fit_fn(key, human, synth, human_weight):
        del key
        total, gram, xty = weighted_moments(human, synth, human_weight)
        safe_total = jnp.where(total > 0, total, 1.0)
        mu, vectors = jnp.linalg.eigh(gram / safe_total)
        num_steps = steps_for(total, compute=compute, epochs=epochs, batch=batch, steps=steps)
        factor = gd_factor(jnp.maximum(mu, 0.0), lr, num_steps)
        return LearnerParams(vectors @ (factor * (vectors.T @ (xty / safe_total))), jnp.ones((), dtype))

    def metrics(params):
        gap = params.w - truth.w
        error = jnp.sum(variances * gap ** 2)
        return {"test_error": error, "loss": error + noise ** 2, "kl": error / (2 * noise ** 2)}

    return Family(
        name="learner",
        truth=truth,
        sample=lambda key, params, num: transform(params, noise_fn(key, num)),
        noise=noise_fn,
        transform=transform,
        data_stats=data_stats,
        sample_stats=sample_stats,
        empty_stats=lambda: empty_moments(dim, dtype),
        combine=combine_moments,
        fit=fit_fn,
        metrics=metrics,
        metric_names=("test_error", "loss", "kl"),
        log_prob=lambda params, rows: jax.scipy.stats.norm.logpdf(rows[:, dim], rows[:, :dim] @ params.w, noise),
    )
