"""Samplers of count vectors, shared by the count families (categorical, the mixture's histogram, the
neural family's sequences): the exact Multinomial(n, q) law (``count_sampler``, its branch chosen from
the static sizes) and the relaxed, differentiable stand-in (``relaxed_counts``)."""
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from mixopt.families import streams


def multinomial_counts(key, count, q):
    """Multinomial(round(count), q) counts, as floats, by V conditional binomials (any count)."""
    return jax.random.multinomial(key, jnp.round(count), q, dtype=q.dtype)


def _split(key, counts, p_left):
    """Each node's count split between its halves by one Binomial(count, p_left): (N,) -> (2N,)."""
    left = jax.random.binomial(key, counts, p_left, dtype=counts.dtype)
    left = jnp.where(p_left >= 1.0, counts, jnp.where(p_left <= 0.0, 0.0, left))
    return jnp.stack([left, counts - left], -1).reshape(-1)


TREE_UNROLLED_LEVELS = 4  # the widest levels, written out; the narrower ones share one rolled binomial


def binomial_tree(key, count, q):
    """Multinomial(round(count), q) counts, as floats, by binary splitting: the count of each node of a
    balanced tree over the V categories is split between its halves by one Binomial(n, q_left / q_node),
    every node of a level at once. Exact in law for any count; ceil(log2 V) sequential levels of
    vectorised binomials instead of V binomials in sequence.

    Compiling a binomial costs about 2 s of XLA on a 2-core CPU, so the narrow levels run in one
    ``lax.scan`` (each padded to the width of the last of them) and only the
    ``TREE_UNROLLED_LEVELS`` widest, which hold 15/16 of the nodes, are written out: 5 binomials in
    the program instead of L. The whole categorical simulation (V = 1000, M = 10^5, replace, T = 99,
    400 seeds, one process, cache off): all 10 levels written out compile in 16.8 s and run in 19.4 s;
    4 written out: 9.9 s and 21.9 s; 2 written out: 6.6 s and 27.0 s (the padded scan draws more).
    Alone, one (400, 1000) draw, 2 written out ran as fast as 10: measure a change in its context."""
    num = q.shape[0]
    levels = max(1, (num - 1).bit_length())
    mass = jnp.zeros(1 << levels, q.dtype).at[:num].set(q)

    def p_left(level):
        halves = mass.reshape(1 << level, 2, -1).sum(-1)
        node = halves.sum(-1)
        return jnp.clip(halves[:, 0] / jnp.where(node > 0, node, 1.0), 0.0, 1.0)

    keys = jax.random.split(key, levels)
    counts = jnp.reshape(jnp.round(count), (1,)).astype(q.dtype)
    rolled = levels - TREE_UNROLLED_LEVELS
    if rolled > 1:  # levels 0 .. rolled-1 in one scan: inputs padded to 2^(rolled-1) nodes, outputs to 2^rolled
        width = 1 << (rolled - 1)
        ps = jnp.stack([jnp.zeros(width, q.dtype).at[: 1 << level].set(p_left(level)) for level in range(rolled)])
        counts, _ = jax.lax.scan(lambda c, x: (_split(x[1], c[:width], x[0]), None),
                                 jnp.zeros(2 * width, q.dtype).at[0].set(counts[0]), (ps, keys[:rolled]))
    for level in range(rolled if rolled > 1 else 0, levels):
        counts = _split(keys[level], counts, p_left(level))
    return counts[:num]


INVERSE_CDF_MAX_RATIO = 10  # M uniforms beat the tree's V binomials up to about M = 10 V (benchmarks/simulate.py)


class CountSampler(NamedTuple):
    """``draw(key, count, q) -> (V,)`` Multinomial(round(count), q) counts (floats), exact in law;
    ``method`` says which branch the static sizes chose."""

    draw: Callable
    method: str

    def __call__(self, key, count, q):
        return self.draw(key, count, q)


def inverse_cdf(q, u):
    """The category of each uniform ``u`` in [0, 1) under probabilities ``q`` (summing to 1 up to
    rounding): the number of cumulative sums <= u x total (``_count_at_most``). A zero-probability
    category has an empty interval, and a uniform that rounds onto the total goes to the last
    category with mass, so a category without mass is never drawn. (``method="scan_unrolled"`` was tried: faster alone, but
    1.5x slower inside the whole categorical simulation, 2.98 s against 1.95 s at V = M = 1000, T = 99,
    S = 400, in one process.)"""
    cum = jnp.cumsum(q)
    last = q.shape[0] - 1 - jnp.argmax(q[::-1] > 0)
    return jnp.minimum(_count_at_most(cum, u * cum[-1]), last)


BLOCK = 32  # two-level search: blocks of 32 cumulative sums, up to BLOCK * BLOCK_MAX_COUNT categories
BLOCK_MAX_COUNT = 32  # measured: V = 100 and 1000 1.7-1.9x faster than searchsorted, V = 2000 (63 blocks) 1.6x slower


def _count_at_most(cum, x):
    """``#{i : cum[i] <= x}`` for each ``x`` (``searchsorted(cum, x, side="right")``, the same
    integers). Up to 1024 categories in two levels of comparisons instead of a binary search (whose
    log2 V dependent gathers are what XLA's CPU searchsorted spends its time on): count the blocks of
    32 whose last sum is <= x (every sum in them is, cum being nondecreasing), then the sums <= x in
    the next block, gathered as one row. The whole categorical simulation (replace, T = 99, 400
    seeds, one process, /tmp A/B): V = M = 1000 2.12 s -> 1.16 s, V = 100 1.49 s -> 0.89 s; V = M =
    2000 (63 blocks) 4.90 s -> 7.64 s, so beyond 32 blocks the binary search stays. Same law; the same
    numbers up to the rounding of the cumulative sums inside a differently fused program (1 seed of
    400 took another path from generation 4 on)."""
    num = cum.shape[0]
    blocks = -(-num // BLOCK)
    if blocks > BLOCK_MAX_COUNT:
        return jnp.searchsorted(cum, x, side="right")
    rows = jnp.full(blocks * BLOCK, jnp.inf, cum.dtype).at[:num].set(cum).reshape(blocks, BLOCK)
    full = jnp.minimum(jnp.sum(rows[:, -1][None, :] <= x[:, None], axis=1), blocks - 1)
    return full * BLOCK + jnp.sum(rows[full] <= x[:, None], axis=1)


def count_sampler(num_categories: int, max_count: int | None, *, method: str | None = None) -> CountSampler:
    """The exact count sampler for V = ``num_categories`` and counts up to ``max_count`` (static).

    ``inverse_cdf`` (default where max_count <= 10 V): max_count uniforms mapped to categories by
    ``inverse_cdf``, the first round(count) of them counted by a scatter-add: O(M log V), every step
    vectorised. ``tree`` (beyond, or without a static bound): ``binomial_tree``, log2 V levels of
    binomials, its cost independent of M. ``binomials``: ``jax.random.multinomial``, V conditional
    binomials in sequence (the sampler before issue 10; kept as the benchmarks' reference). A count
    above ``max_count`` is not allowed on the ``inverse_cdf`` branch.
    """
    if method is None:
        method = ("inverse_cdf" if max_count is not None and max_count <= INVERSE_CDF_MAX_RATIO * num_categories
                  else "tree")
    if method in ("binomials", "tree"):
        return CountSampler(multinomial_counts if method == "binomials" else binomial_tree, method)
    if method != "inverse_cdf" or max_count is None:
        raise ValueError(f"count sampler {method!r} needs a static max_count")
    slots = jnp.arange(max_count)

    def draw(key, count, q):
        index = inverse_cdf(q, streams.uniform(key, (max_count,), q.dtype))
        return jnp.zeros_like(q).at[index].add((slots < jnp.round(count)).astype(q.dtype))

    return CountSampler(draw, method)


def relaxed_counts(key, count, q):
    """Differentiable stand-in for Multinomial(n, q): n * Dirichlet(n q), the normalised Gamma(n q_i)
    (the Poissonised counts conditioned on their total). Same mean n q; variance
    n q_i (1 - q_i) n / (n + 1). loggamma keeps tiny shapes finite."""
    shape = jnp.maximum(count * q, 1e-12)
    log_g = jnp.where(q > 0, jax.random.loggamma(key, shape), -jnp.inf)
    return count * jax.nn.softmax(log_g)
