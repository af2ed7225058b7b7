"""Gaussian mixture family (1-D, 2-D or 3-D): functional expressivity error.

The truth is a mixture with broad components *and* small narrow ones (the fine detail, the
"freckles") and a wide component that makes far tails. The model is a mixture of K components
(diagonal covariances) fitted by a fixed number of EM iterations (unrolled: differentiable in the
sample weights). With K below the truth's component count, EM must merge components and the fine
detail is smoothed away; the smoothed model's samples then teach the next generation a smoother
world.

Data live on a fine grid: a batch is summarised by its histogram over B bins per axis of width h
on [-L, L]^d (values beyond are counted in the edge bins), and EM runs on the binned data (EM for
grouped data; McLachlan & Jones 1988) at cost O(B^d K) per iteration, independent of M. So the
statistics are additive counts like the categorical family's, and the exact sampler draws them as
Multinomial(n, mass of each cell under the model) — a diagonal Gaussian's cell mass is a product of
per-axis normal CDF differences — which is exactly the law of the histogram of n samples. With the
1-D default grid (B = 1024, L = 20, h = 0.039) binning is far finer than the narrowest default
component (sd 0.15, four bins); Sheppard's variance correction (h^2 / 12 = 1.3e-4) is not applied.
In d > 1 dimensions the default truth places the same five components along the first axis (the
freckles' sd raised to 0.3, so that the default grids — B = 128 on [-12, 12]^2, B = 40 on
[-12, 12]^3 — resolve them).

Metrics (against the truth):
  kl: KL(truth || model) by quadrature on the grid's cell centres (midpoint rule), in any d.
  w2 (1-D only): Wasserstein-2 distance from the quantile functions (W2^2 = int_0^1 (F^-1 - G^-1)^2
    du, by the midpoint rule on 512 levels u, quantiles by interpolating the CDFs on the grid).
  mode_coverage: the share of the truth's components j whose peak the model still represents: the
    model's density at the component mean mu_j is at least half the truth's density there.
  variance_ratio: trace of the model's covariance / the truth's (closed forms of mixture moments).
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp
from jax.scipy.stats import norm

from mixopt.errors import ConfigError
from mixopt.families import streams
from mixopt.families.base import Family
from mixopt.families.categorical import weighted_counts
from mixopt.families.counts import count_sampler, relaxed_counts

# weights, means (first axis), sds: two broad components, two freckles, a wide component for the far tails
DEFAULT_TRUTH = ((0.40, 0.40, 0.05, 0.05, 0.10), (-2.0, 2.0, -5.5, 5.5, 0.0), (1.0, 1.0, 0.15, 0.15, 5.0))
DEFAULT_GRID = {1: (1024, 20.0), 2: (128, 12.0), 3: (40, 12.0)}  # dim -> (bins per axis, limit)
FRECKLE_SD_ND = 0.3  # the freckles' sd in d > 1 dimensions, where grids are coarser
MAX_CELLS = 2**17


class MixtureParams(NamedTuple):
    weights: jax.Array  # (K,)
    means: jax.Array  # (K, d)
    sds: jax.Array  # (K, d) per-axis standard deviations (diagonal covariances)
    temperature: jax.Array  # () sampling temperature: samples use sds * temperature (truth: 1)


def _component_logpdf(params_m, params_s, x):
    """(N, K) log density of each diagonal component at points x (N, d)."""
    return jnp.sum(norm.logpdf(x[:, None, :], params_m[None, :, :], params_s[None, :, :]), axis=2)


def _mixture_logpdf(params_w, params_m, params_s, x):
    """log density of a mixture at points x (N, d)."""
    return logsumexp(_component_logpdf(params_m, params_s, x) + jnp.log(params_w)[None, :], axis=1)


def _mixture_cdf_1d(params_w, params_m, params_s, x):
    """CDF of a 1-D mixture (means, sds (K, 1)) at points x (N,)."""
    return jnp.sum(params_w[None, :] * norm.cdf((x[:, None] - params_m[None, :, 0]) / params_s[None, :, 0]), axis=1)


def _mixture_trace(params_w, params_m, params_s):
    """Trace of a mixture's covariance: sum over axes of E[x^2] - E[x]^2."""
    mean = params_w @ params_m
    return jnp.sum(params_w @ (params_s**2 + params_m**2) - mean**2)


def _truth(dim, weights, means, sds):
    """The truth's (weights (J,), means (J, d), sds (J, d)) as float64, checked."""
    given = [weights, means, sds]
    if all(v is None for v in given):
        w, m, s = (np.asarray(v, np.float64) for v in DEFAULT_TRUTH)
        if dim > 1:
            s = np.maximum(s, FRECKLE_SD_ND)
        return w, np.pad(m[:, None], ((0, 0), (0, dim - 1))), np.repeat(s[:, None], dim, axis=1)
    if any(v is None for v in given):
        raise ConfigError("scenario.truth needs weights, means and sds together (or none of them)")
    try:
        w, m, s = (np.asarray(v, np.float64) for v in given)
    except (TypeError, ValueError):
        raise ConfigError("scenario.truth.weights, means and sds must be lists of numbers") from None
    m, s = (v.reshape(-1, 1) if v.ndim == 1 and dim == 1 else v for v in (m, s))
    if not (w.ndim == 1 and len(w) >= 1 and m.shape == s.shape == (len(w), dim)):
        raise ConfigError(f"scenario.truth.weights must be a list of J numbers and means and sds lists of J "
                          f"(for dim = {dim}: J lists of {dim}) numbers, of one length J")
    if np.any(w <= 0) or np.any(s <= 0):
        raise ConfigError("scenario.truth.weights and sds must all be > 0")
    return w / w.sum(), m, s


def gmm(*, components: int = 3, em_steps: int = 50, dim: int = 1, weights=None, means=None, sds=None,
        bins: int | None = None, limit: float | None = None, temperature: float = 1.0,
        num_samples: int | None = None) -> Family:
    """Makes the Gaussian mixture family.

    Args:
      components: K >= 1, the model's number of components (the truth has 5 by default: K < 5
        shows expressivity error).
      em_steps: EM iterations per fit (>= 1), unrolled with ``lax.scan``.
      dim: d, 1, 2 or 3 (the grid has B^d cells, at most 2^17).
      weights, means, sds: the truth's mixture (J weights; J means and J sds, each a number in 1-D or
        a list of d numbers: diagonal covariances); default: two broad components, two narrow
        "freckles" and a wide tail component along the first axis (``DEFAULT_TRUTH``).
      bins: B, the grid's bins per axis; limit: L, the grid covers [-L, L]^d (defaults by d:
        ``DEFAULT_GRID``).
      temperature: sampling temperature > 0 of the model at synthesis (component sds scaled by it).

    Raises:
      ConfigError: a parameter out of range.
    """
    if dim not in DEFAULT_GRID or isinstance(dim, bool):
        raise ConfigError(f"scenario.truth.dim must be 1, 2 or 3 for family gmm, got {dim!r}")
    bins = DEFAULT_GRID[dim][0] if bins is None else bins
    limit = DEFAULT_GRID[dim][1] if limit is None else limit
    for name, value, minimum in (("components", components, 1), ("em_steps", em_steps, 1), ("bins", bins, 16)):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(f"scenario.truth.{name} must be an integer >= {minimum}, got {value!r}")
    if bins**dim > MAX_CELLS:
        raise ConfigError(f"scenario.truth.bins^dim must be <= {MAX_CELLS} grid cells, got {bins}^{dim}")
    if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit > 0:
        raise ConfigError(f"scenario.truth.limit must be a number > 0, got {limit!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
        raise ConfigError(f"scenario.truth.temperature must be a number > 0, got {temperature!r}")
    w, m, s = _truth(dim, weights, means, sds)

    dtype = jnp.result_type(float)
    width = 2.0 * limit / bins
    cell = width**dim
    counts = count_sampler(bins**dim, num_samples)  # M: set from the scenario by make_family
    edges = jnp.asarray(np.linspace(-limit, limit, bins + 1), dtype)
    axis_centres = (edges[:-1] + edges[1:]) / 2
    grid = jnp.stack(jnp.meshgrid(*[axis_centres] * dim, indexing="ij"), axis=-1).reshape(-1, dim)  # (B^d, d)
    truth = MixtureParams(*(jnp.asarray(v, dtype) for v in (w, m, s)), jnp.ones((), dtype))
    variance_floor = width**2  # a component narrower than a bin is below the data's resolution
    half = min(8, (bins - 1) // 2)  # a kernel longer than the grid would lengthen "same" convolutions
    offsets = jnp.arange(-half, half + 1, dtype=dtype)
    smoothing_kernel = jnp.exp(-0.5 * (offsets / 3.0) ** 2)  # sd 3 bins, for the initialisation only

    def cell_probs(params):
        # per component and axis, the mass of each bin (edge bins take the tails); a diagonal
        # component's cell mass is the product over axes
        z = (edges[None, None, 1:-1] - params.means[:, :, None]) / (params.sds * params.temperature)[:, :, None]
        cdf = jnp.concatenate([jnp.zeros(z.shape[:2] + (1,), dtype), norm.cdf(z), jnp.ones(z.shape[:2] + (1,), dtype)],
                              axis=2)
        per_axis = jnp.maximum(jnp.diff(cdf, axis=2), 0.0)  # (K, d, B)
        mass = per_axis[:, 0, :]
        for axis in range(1, dim):
            mass = (mass[:, :, None] * per_axis[:, axis, None, :]).reshape(mass.shape[0], -1)
        return params.weights @ mass

    def noise(key, num):
        key_u, key_z = jax.random.split(key)
        return jnp.concatenate([streams.uniform(key_u, (num, 1), dtype), streams.normal(key_z, (num, dim), dtype)],
                               axis=1)

    def transform(params, z):
        cum = jnp.cumsum(params.weights)
        comp = jnp.minimum(jnp.searchsorted(cum, z[:, 0] * cum[-1], side="right"), params.weights.shape[0] - 1)
        return params.means[comp] + params.sds[comp] * params.temperature * z[:, 1:]

    def sample(key, params, num):
        return transform(params, noise(key, num))

    def data_stats(x, weights):
        weights = jnp.broadcast_to(jnp.asarray(weights, dtype), x.shape[:1])
        index = jnp.clip(jnp.floor((x + limit) / width), 0, bins - 1).astype(jnp.int32)  # (N, d)
        flat = jnp.zeros(x.shape[:1], jnp.int32)
        for axis in range(dim):
            flat = flat * bins + index[:, axis]
        return jnp.zeros(bins**dim, dtype).at[flat].add(weights)

    def sample_stats(key, params, count):
        return counts(key, count, cell_probs(params))

    def relaxed_stats(key, params, count):
        return relaxed_counts(key, count, cell_probs(params))

    def empty_stats():
        return jnp.zeros(bins**dim, dtype)

    def combine(a, b):
        return a + b

    def smoothed(counts):
        volume = counts.reshape((bins,) * dim)
        for axis in range(dim):
            volume = jnp.apply_along_axis(lambda v: jnp.convolve(v, smoothing_kernel, mode="same"), axis, volume)
        return volume.reshape(-1)

    def em(counts):
        total = jnp.maximum(jnp.sum(counts), 1e-12)
        mean = counts @ grid / total
        var = jnp.maximum(counts @ (grid - mean[None, :]) ** 2 / total, variance_floor)
        # Initialisation (deterministic): one wide "background" component at the data's mean and
        # sd, so that far-tail mass does not inflate the narrow ones; the other K - 1 means by a
        # density-weighted maximin (k-means++ without the dice): the first at the smoothed
        # histogram's mode, each next where density x squared distance to the nearest chosen
        # mean is largest, so isolated narrow peaks get a component of their own; those start
        # narrow (4 bins) and lock onto their own peak before they widen.
        smooth = smoothed(counts)
        chosen = [mean]
        for _ in range(components - 1):
            nearest = jnp.min(jnp.sum((grid[:, None, :] - jnp.stack(chosen)[None, :, :]) ** 2, axis=2), axis=1)
            chosen.append(grid[jnp.argmax(smooth * nearest)])
        sds = jnp.full((components, dim), 4.0 * width, dtype).at[0].set(jnp.sqrt(var))
        init = (jnp.full(components, 1.0 / components, dtype), jnp.stack(chosen), sds)

        def step(params, _):
            w, m, s = params
            log_r = _component_logpdf(m, s, grid) + jnp.log(w)[None, :]
            r = jnp.exp(log_r - logsumexp(log_r, axis=1, keepdims=True)) * counts[:, None]  # (N, K)
            n_k = jnp.sum(r, axis=0) + 1e-10
            m = (r.T @ grid) / n_k[:, None]
            v = jnp.einsum("nk,nkd->kd", r, (grid[:, None, :] - m[None, :, :]) ** 2) / n_k[:, None]
            return (n_k / jnp.sum(n_k), m, jnp.sqrt(jnp.maximum(v, variance_floor))), None

        (w, m, s), _ = jax.lax.scan(step, init, None, length=em_steps)
        return w, m, s

    def fit_fn(key, human, synth, human_weight):
        del key
        w, m, s = em(weighted_counts(human, synth, human_weight))
        return MixtureParams(w, m, s, jnp.asarray(temperature, dtype))

    true_log = _mixture_logpdf(truth.weights, truth.means, truth.sds, grid)
    true_at_means = jnp.exp(_mixture_logpdf(truth.weights, truth.means, truth.sds, truth.means))
    true_trace = _mixture_trace(truth.weights, truth.means, truth.sds)
    if dim == 1:
        levels = (jnp.arange(512, dtype=dtype) + 0.5) / 512
        fine = jnp.linspace(-limit, limit, 8 * bins + 1, dtype=dtype)
        true_quantiles = jnp.interp(levels, _mixture_cdf_1d(truth.weights, truth.means, truth.sds, fine), fine)

    def metrics(params):
        model_log = _mixture_logpdf(params.weights, params.means, params.sds, grid)
        model_at_means = jnp.exp(_mixture_logpdf(params.weights, params.means, params.sds, truth.means))
        out = {"kl": jnp.sum(jnp.exp(true_log) * (true_log - model_log)) * cell}
        if dim == 1:
            model_quantiles = jnp.interp(levels, _mixture_cdf_1d(params.weights, params.means, params.sds, fine), fine)
            out["w2"] = jnp.sqrt(jnp.mean((model_quantiles - true_quantiles) ** 2))
        out["mode_coverage"] = jnp.mean((model_at_means >= 0.5 * true_at_means).astype(dtype))
        out["variance_ratio"] = _mixture_trace(params.weights, params.means, params.sds) / true_trace
        return out

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
        metric_names=("kl",) + ("w2",) * (dim == 1) + ("mode_coverage", "variance_ratio"),
        relaxed_stats=relaxed_stats,
        log_prob=lambda params, x: _mixture_logpdf(params.weights, params.means, params.sds, x),
    )
