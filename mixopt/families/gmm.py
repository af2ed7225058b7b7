"""Gaussian mixture family (1-D): functional expressivity error.

The truth is a mixture with broad components *and* small narrow ones (the fine detail, the
"freckles") and a wide component that makes far tails. The model is a mixture of K components
fitted by a fixed number of EM iterations (unrolled: differentiable in the sample weights). With K
below the truth's component count, EM must merge components and the fine detail is smoothed
away; the smoothed model's samples then teach the next generation a smoother world.

Data live on a fine grid: a batch is summarised by its histogram over B bins of width h on
[-L, L] (values beyond are counted in the edge bins), and EM runs on the binned data (EM for
grouped data; McLachlan & Jones 1988) at cost O(B K) per iteration, independent of M. So the
statistics are additive counts like the categorical family's, and the exact sampler draws them as
Multinomial(n, mass of each bin under the model), which is exactly the law of the histogram of n
samples. With the default grid (B = 1024, L = 20, h = 0.039) binning is far finer than the
narrowest default component (sd 0.15, four bins); Sheppard's variance correction (h^2 / 12 = 1.3e-4)
is not applied.

Metrics (against the truth):
  kl: KL(truth || model) by quadrature on the grid's bin centres (midpoint rule).
  w2: Wasserstein-2 distance, from the quantile functions (W2^2 = int_0^1 (F^-1 - G^-1)^2 du, by
    the midpoint rule on 512 levels u, quantiles by interpolating the CDFs on the grid).
  mode_coverage: the share of the truth's components j whose peak the model still represents: the
    model's density at the component mean mu_j is at least half the truth's density there.
  variance_ratio: model variance / true variance (closed form of each mixture's variance).
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp
from jax.scipy.stats import norm

from mixopt.errors import ConfigError
from mixopt.families.base import Family
from mixopt.families.categorical import multinomial_counts, relaxed_counts, weighted_counts

# weights, means, sds: two broad components, two freckles, a wide component for the far tails
DEFAULT_TRUTH = ((0.40, 0.40, 0.05, 0.05, 0.10), (-2.0, 2.0, -5.5, 5.5, 0.0), (1.0, 1.0, 0.15, 0.15, 5.0))


class MixtureParams(NamedTuple):
    weights: jax.Array  # (K,)
    means: jax.Array  # (K,)
    sds: jax.Array  # (K,)
    temperature: jax.Array  # () sampling temperature: samples use sds * temperature (truth: 1)


def _mixture_logpdf(params_w, params_m, params_s, x):
    """log density of a 1-D mixture at points x (N,)."""
    log_comp = norm.logpdf(x[:, None], params_m[None, :], params_s[None, :]) + jnp.log(params_w)[None, :]
    return logsumexp(log_comp, axis=1)


def _mixture_cdf(params_w, params_m, params_s, x):
    return jnp.sum(params_w[None, :] * norm.cdf((x[:, None] - params_m[None, :]) / params_s[None, :]), axis=1)


def _mixture_variance(params_w, params_m, params_s):
    mean = jnp.sum(params_w * params_m)
    return jnp.sum(params_w * (params_s**2 + params_m**2)) - mean**2


def gmm(*, components: int = 3, em_steps: int = 50, weights=None, means=None, sds=None, bins: int = 1024,
        limit: float = 20.0, temperature: float = 1.0) -> Family:
    """Makes the 1-D Gaussian mixture family.

    Args:
      components: K >= 1, the model's number of components (the truth has 5 by default: K < 5
        shows expressivity error).
      em_steps: EM iterations per fit (>= 1), unrolled with ``lax.scan``.
      weights, means, sds: the truth's mixture (lists of equal length); default: two broad
        components, two narrow "freckles" and a wide tail component (``DEFAULT_TRUTH``).
      bins: B, the grid's bins; limit: L, the grid covers [-L, L].
      temperature: sampling temperature > 0 of the model at synthesis (component sds scaled by it).

    Raises:
      ConfigError: a parameter out of range.
    """
    for name, value, minimum in (("components", components, 1), ("em_steps", em_steps, 1), ("bins", bins, 16)):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(f"scenario.truth.{name} must be an integer >= {minimum}, got {value!r}")
    if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit > 0:
        raise ConfigError(f"scenario.truth.limit must be a number > 0, got {limit!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
        raise ConfigError(f"scenario.truth.temperature must be a number > 0, got {temperature!r}")
    given = [weights, means, sds]
    if any(v is not None for v in given):
        if any(v is None for v in given):
            raise ConfigError("scenario.truth needs weights, means and sds together (or none of them)")
        try:
            w, m, s = (np.asarray(v, np.float64) for v in given)
        except (TypeError, ValueError):
            raise ConfigError("scenario.truth.weights, means and sds must be lists of numbers") from None
        if not (w.ndim == m.ndim == s.ndim == 1 and len(w) == len(m) == len(s) >= 1):
            raise ConfigError("scenario.truth.weights, means and sds must be lists of one equal length")
        if np.any(w <= 0) or np.any(s <= 0):
            raise ConfigError("scenario.truth.weights and sds must all be > 0")
        w = w / w.sum()
    else:
        w, m, s = (np.asarray(v, np.float64) for v in DEFAULT_TRUTH)

    dtype = jnp.result_type(float)
    width = 2.0 * limit / bins
    edges = jnp.asarray(np.linspace(-limit, limit, bins + 1), dtype)
    centres = (edges[:-1] + edges[1:]) / 2
    truth = MixtureParams(*(jnp.asarray(v, dtype) for v in (w, m, s)), jnp.ones((), dtype))
    levels = (jnp.arange(512, dtype=dtype) + 0.5) / 512
    variance_floor = width**2  # a component narrower than a bin is below the data's resolution
    offsets = jnp.arange(-8, 9, dtype=dtype)
    smoothing_kernel = jnp.exp(-0.5 * (offsets / 3.0) ** 2)  # sd 3 bins, for the initialisation only

    def bin_probs(params):
        cdf = _mixture_cdf(params.weights, params.means, params.sds * params.temperature, edges[1:-1])
        cdf = jnp.concatenate([jnp.zeros(1, dtype), cdf, jnp.ones(1, dtype)])  # edge bins take the tails
        return jnp.maximum(jnp.diff(cdf), 0.0)

    def noise(key, num):
        key_u, key_z = jax.random.split(key)
        return jnp.stack([jax.random.uniform(key_u, (num,), dtype), jax.random.normal(key_z, (num,), dtype)], 1)

    def transform(params, z):
        cum = jnp.cumsum(params.weights)
        comp = jnp.minimum(jnp.searchsorted(cum, z[:, 0] * cum[-1], side="right"), params.weights.shape[0] - 1)
        return params.means[comp] + params.sds[comp] * params.temperature * z[:, 1]

    def sample(key, params, num):
        return transform(params, noise(key, num))

    def data_stats(x, weights):
        weights = jnp.broadcast_to(jnp.asarray(weights, dtype), x.shape)
        index = jnp.clip(jnp.floor((x + limit) / width), 0, bins - 1).astype(jnp.int32)
        return jnp.zeros(bins, dtype).at[index].add(weights)

    def sample_stats(key, params, count):
        return multinomial_counts(key, count, bin_probs(params))

    def relaxed_stats(key, params, count):
        return relaxed_counts(key, count, bin_probs(params))

    def empty_stats():
        return jnp.zeros(bins, dtype)

    def combine(a, b):
        return a + b

    def em(counts):
        total = jnp.maximum(jnp.sum(counts), 1e-12)
        mean = jnp.sum(counts * centres) / total
        var = jnp.maximum(jnp.sum(counts * (centres - mean) ** 2) / total, variance_floor)
        # Initialisation (deterministic): one wide "background" component at the data's mean and
        # sd, so that far-tail mass does not inflate the narrow ones; the other K - 1 means by a
        # density-weighted maximin (k-means++ without the dice): the first at the smoothed
        # histogram's mode, each next where density x squared distance to the nearest chosen
        # mean is largest, so isolated narrow peaks get a component of their own; those start
        # narrow (4 bins) and lock onto their own peak before they widen.
        smooth = jnp.convolve(counts, smoothing_kernel, mode="same")
        chosen = [mean]
        for _ in range(components - 1):
            nearest = jnp.min(jnp.abs(centres[:, None] - jnp.stack(chosen)[None, :]), axis=1)
            chosen.append(centres[jnp.argmax(smooth * nearest**2)])
        sds = jnp.full(components, 4.0 * width, dtype).at[0].set(jnp.sqrt(var))
        init = (jnp.full(components, 1.0 / components, dtype), jnp.stack(chosen), sds)

        def step(params, _):
            w, m, s = params
            log_r = norm.logpdf(centres[:, None], m[None, :], s[None, :]) + jnp.log(w)[None, :]
            r = jnp.exp(log_r - logsumexp(log_r, axis=1, keepdims=True)) * counts[:, None]  # (B, K)
            n_k = jnp.sum(r, axis=0) + 1e-10
            m = jnp.sum(r * centres[:, None], axis=0) / n_k
            v = jnp.sum(r * (centres[:, None] - m[None, :]) ** 2, axis=0) / n_k
            return (n_k / jnp.sum(n_k), m, jnp.sqrt(jnp.maximum(v, variance_floor))), None

        (w, m, s), _ = jax.lax.scan(step, init, None, length=em_steps)
        return w, m, s

    def fit_fn(key, human, synth, human_weight):
        del key
        w, m, s = em(weighted_counts(human, synth, human_weight))
        return MixtureParams(w, m, s, jnp.asarray(temperature, dtype))

    true_log = _mixture_logpdf(truth.weights, truth.means, truth.sds, centres)
    true_at_means = jnp.exp(_mixture_logpdf(truth.weights, truth.means, truth.sds, truth.means))
    true_variance = _mixture_variance(truth.weights, truth.means, truth.sds)
    grid = jnp.linspace(-limit, limit, 8 * bins + 1, dtype=dtype)
    true_quantiles = jnp.interp(levels, _mixture_cdf(truth.weights, truth.means, truth.sds, grid), grid)

    def metrics(params):
        model_log = _mixture_logpdf(params.weights, params.means, params.sds, centres)
        kl = jnp.sum(jnp.exp(true_log) * (true_log - model_log)) * width
        model_cdf = _mixture_cdf(params.weights, params.means, params.sds, grid)
        model_quantiles = jnp.interp(levels, model_cdf, grid)
        model_at_means = jnp.exp(_mixture_logpdf(params.weights, params.means, params.sds, truth.means))
        return {
            "kl": kl,
            "w2": jnp.sqrt(jnp.mean((model_quantiles - true_quantiles) ** 2)),
            "mode_coverage": jnp.mean((model_at_means >= 0.5 * true_at_means).astype(dtype)),
            "variance_ratio": _mixture_variance(params.weights, params.means, params.sds) / true_variance,
        }

    return Family(
        name="gmm",
        truth=truth,
        sample=sample,
        noise=noise,
        transform=transform,
        data_stats=data_stats,
        sample_stats=sample_stats,
        empty_stats=empty_stats,
        combine=combine,
        fit=fit_fn,
        metrics=metrics,
        metric_names=("kl", "w2", "mode_coverage", "variance_ratio"),
        relaxed_stats=relaxed_stats,
        log_prob=lambda params, x: _mixture_logpdf(params.weights, params.means, params.sds, x),
    )
