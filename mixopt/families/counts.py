"""Samplers of count vectors, shared by the count families (categorical, the mixture's histogram, the
neural family's sequences): the exact Multinomial(n, q) law (``count_sampler``, its branch chosen from
the static sizes) and the relaxed, differentiable stand-in (``relaxed_counts``)."""
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp


def multinomial_counts(key, count, q):
    """Multinomial(round(count), q) counts, as floats, by V conditional binomials (any count)."""
    return jax.random.multinomial(key, jnp.round(count), q, dtype=q.dtype)


INVERSE_CDF_MAX_RATIO = 10  # M uniforms beat V binomials up to about M = 10 V (benchmarks/simulate.py)


class CountSampler(NamedTuple):
    """``draw(key, count, q) -> (V,)`` Multinomial(round(count), q) counts (floats), exact in law;
    ``method`` says which branch the static sizes chose."""

    draw: Callable
    method: str

    def __call__(self, key, count, q):
        return self.draw(key, count, q)


def inverse_cdf(q, u):
    """The category of each uniform ``u`` in [0, 1) under probabilities ``q`` (summing to 1 up to
    rounding): ``searchsorted`` on the cumulative sums. A zero-probability category has an empty
    interval, and a uniform that rounds onto the total goes to the last category with mass, so a
    category without mass is never drawn."""
    cum = jnp.cumsum(q)
    last = q.shape[0] - 1 - jnp.argmax(q[::-1] > 0)
    return jnp.minimum(jnp.searchsorted(cum, u * cum[-1], side="right"), last)


def count_sampler(num_categories: int, max_count: int | None, *, method: str | None = None) -> CountSampler:
    """The exact count sampler for V = ``num_categories`` and counts up to ``max_count`` (static).

    ``inverse_cdf`` (default where max_count <= 10 V): max_count uniforms mapped to categories by
    ``inverse_cdf``, the first round(count) of them counted by a scatter-add: O(M log V), every step vectorised. ``binomials``
    (beyond, or without a static bound): ``jax.random.multinomial``, V conditional binomials in
    sequence. A count above ``max_count`` is not allowed on the ``inverse_cdf`` branch.
    """
    if method is None:
        method = ("inverse_cdf" if max_count is not None and max_count <= INVERSE_CDF_MAX_RATIO * num_categories
                  else "binomials")
    if method == "binomials":
        return CountSampler(multinomial_counts, method)
    if method != "inverse_cdf" or max_count is None:
        raise ValueError(f"count sampler {method!r} needs a static max_count")
    slots = jnp.arange(max_count)

    def draw(key, count, q):
        index = inverse_cdf(q, jax.random.uniform(key, (max_count,), q.dtype))
        return jnp.zeros_like(q).at[index].add((slots < jnp.round(count)).astype(q.dtype))

    return CountSampler(draw, method)


def relaxed_counts(key, count, q):
    """Differentiable stand-in for Multinomial(n, q): n * Dirichlet(n q), the normalised Gamma(n q_i)
    (the Poissonised counts conditioned on their total). Same mean n q; variance
    n q_i (1 - q_i) n / (n + 1). loggamma keeps tiny shapes finite."""
    shape = jnp.maximum(count * q, 1e-12)
    log_g = jnp.where(q > 0, jax.random.loggamma(key, shape), -jnp.inf)
    return count * jax.nn.softmax(log_g)
