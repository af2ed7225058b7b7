"""Samplers of count vectors, shared by the count families (categorical, the mixture's histogram, the
neural family's sequences): the exact Multinomial(n, q) law (``count_sampler``, its branch chosen from
the static sizes) and the relaxed, differentiable stand-in (``relaxed_counts``)."""
import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mixopt.families import streams


def multinomial_counts(key, count, q):
    """Multinomial(round(count), q) counts, as floats, by V conditional binomials (any count)."""
    return jax.random.multinomial(key, jnp.round(count), q, dtype=q.dtype)


INVERSION_MAX_MEAN = 10.0  # Binomial(n, q), q <= 1/2: the pmf walked up from 0 where n q <= 10, BTRS beyond
INVERSION_MAX_STEPS = 48  # P(X >= 48) < 1e-16 at mean 10: the walk's cap, below the resolution of any uniform
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_STIRLING_TABLE = np.array([math.lgamma(k + 1) - (k + 0.5) * math.log(k + 1) + (k + 1) - _LOG_SQRT_2PI
                            for k in range(10)])


def _stirling_tail(k):
    """log k! - [(k + 1/2) log(k + 1) - (k + 1) + log(2 pi) / 2]: exact below 10, the series beyond."""
    k_sq = (k + 1) * (k + 1)
    series = (1.0 / 12 - (1.0 / 360 - 1.0 / 1260 / k_sq) / k_sq) / (k + 1)
    table = jnp.asarray(_STIRLING_TABLE, k.dtype)[jnp.clip(k, 0, 9).astype(jnp.int32)]
    return jnp.where(k <= 9, table, series)


def _odds(q):
    return q / (1.0 - q)


def _inversion(key, n, q):
    """Binomial(n, q) by inversion: one uniform u, the pmf walked up from P(X = 0) = (1 - q)^n by
    p_{k+1} = p_k (n - k) q / ((k + 1)(1 - q)) until its sum reaches u (for n q <= 10: a few steps)."""
    u = streams.uniform(key, n.shape, q.dtype)
    ratio = _odds(q)
    p = jnp.exp(n * jnp.log1p(-q))

    def step(carry):
        i, k, p, cdf = carry
        walk = (u > cdf) & (k < n)
        p = jnp.where(walk, p * ratio * (n - k) / (k + 1.0), p)
        return i + 1, jnp.where(walk, k + 1.0, k), p, jnp.where(walk, cdf + p, cdf)

    def more(carry):
        i, k, _, cdf = carry
        return jnp.any((u > cdf) & (k < n)) & (i < INVERSION_MAX_STEPS)

    return jax.lax.while_loop(more, step, (0, jnp.zeros_like(n), p, p))[1]


def _squeeze_height(b):
    """Below it, a proposal is accepted without evaluating the pmf (the squeeze of BTRS)."""
    return 0.92 - 4.2 / b


def _btrs_round(key, n, q):
    """One BTRS proposal for each lane, transformed rejection with squeeze (Hormann, *The generation
    of binomial random variates*, J. Stat. Comput. Simul. 46, 1993), valid for n q > 10: (k, accepted)."""
    spq = jnp.sqrt(n * q * (1.0 - q))
    b = 1.15 + 2.53 * spq
    a = -0.0873 + 0.0248 * b + 0.01 * q
    r = _odds(q)
    m = jnp.floor((n + 1.0) * q)
    u, v = streams.uniform(key, (2,) + n.shape, q.dtype)
    u = u - 0.5
    us = 0.5 - jnp.abs(u)
    k = jnp.floor((2.0 * a / us + b) * u + n * q + 0.5)
    log_v = jnp.log(v * (2.83 + 5.1 / b) * spq / (a / (us * us) + b))
    bound = ((m + 0.5) * jnp.log((m + 1.0) / (r * (n - m + 1.0))) + (n + 1.0) * jnp.log((n - m + 1.0) / (n - k + 1.0))
             + (k + 0.5) * jnp.log(r * (n - k + 1.0) / (k + 1.0))
             + _stirling_tail(m) + _stirling_tail(n - m) - _stirling_tail(k) - _stirling_tail(n - k))
    squeeze = (us >= 0.07) & (v <= _squeeze_height(b))
    return k, squeeze | ((k >= 0) & (k <= n) & (log_v <= bound))


def _until_accepted(key, n, q, k, done):
    """Further BTRS rounds (key folded with the round) for the lanes not ``done``, until every lane is."""
    def step(carry):
        i, k, done = carry
        k_new, accept = _btrs_round(jax.random.fold_in(key, i), n, q)
        accept = accept & ~done
        return i + 1, jnp.where(accept, k_new, k), done | accept

    return jax.lax.while_loop(lambda carry: ~jnp.all(carry[2]), step, (0, k, done))[1]


BTRS_COMPACT_MIN = 64  # lanes from which the rejected ones go on in a buffer ...
BTRS_BUFFER_SHARE = 4  # ... a quarter as wide


def _btrs(key, n, q):
    """Binomial(n, q) for n q > 10 by BTRS. Every lane proposes once; about 1 in 7 is rejected, and a
    loop over all lanes would run until the last accepts (about 6 rounds at 10^5 lanes). From
    ``BTRS_COMPACT_MIN`` lanes on, the rejected ones are gathered into a buffer a quarter as wide and
    go on there; lanes that did not fit (more than a quarter rejected) finish on the full width.
    Which lanes go on depends only on the first round, and each round draws fresh uniforms, so the
    law is the same. A (400, 1024) draw at n = 10^5 on 2 CPU cores: 127 ms on the full width, 48 ms
    with the buffer. (One loop that gathers the lanes not yet accepted every round compiled faster,
    16 s against 22 s for the whole categorical simulation at M = 10^5, but ran 1.6x slower.)"""
    key_first, key_buffer, key_rest = jax.random.split(key, 3)
    k, done = _btrs_round(key_first, n, q)
    if n.size >= BTRS_COMPACT_MIN:
        shape, lanes = n.shape, n.size
        index = jnp.nonzero(~done.ravel(), size=max(1, lanes // BTRS_BUFFER_SHARE), fill_value=lanes)[0]
        n_buf = n.ravel().at[index].get(mode="fill", fill_value=1e4)  # filler slots: a lane that accepts at once
        q_buf = q.ravel().at[index].get(mode="fill", fill_value=0.5)
        k_buf = _until_accepted(key_buffer, n_buf, q_buf, jnp.zeros_like(n_buf), jnp.zeros(n_buf.shape, bool))
        k = k.ravel().at[index].set(k_buf, mode="drop").reshape(shape)
        done = done.ravel().at[index].set(True, mode="drop").reshape(shape)
    return _until_accepted(key_rest, n, q, k, done)


@jax.jit
def binomial(key, count, prob):
    """Binomial(round(count), prob) draws (floats, the shape of ``prob``), exact in law: for q = min(p,
    1 - p), inversion where n q <= 10, BTRS beyond, n - X for p > 1/2; p outside [0, 1] is clipped.
    Uniforms from ``streams``. Both branches run over every lane (static shapes); the lanes of the
    other branch are given sizes that finish at once (n = 0; n = 10^4, q = 1/2 as in ``jax.random``).

    Jitted so that its trace, and its batching under ``vmap`` (the while loops of BTRS are the
    costliest part of tracing a simulation), are made once per shape and reused by every call in a
    process: the gmm's default world (T = 4, M = 20000, 256 bins, 40 seeds) traced in 4.7 s without
    (4.1 s again for a second simulator of the same shapes), 2.4 s with (0.33 s for the second); the
    same numbers."""
    n = jnp.broadcast_to(jnp.round(count), prob.shape).astype(prob.dtype)
    prob = jnp.clip(prob, 0.0, 1.0)
    flip = prob > 0.5
    q = jnp.where(flip, 1.0 - prob, prob)
    small = n * q <= INVERSION_MAX_MEAN
    key_inversion, key_btrs = jax.random.split(key)
    low = _inversion(key_inversion, jnp.where(small, n, 0.0), q)
    high = _btrs(key_btrs, jnp.where(small, 1e4, n), jnp.where(small, 0.5, q))
    k = jnp.where(small, low, high)
    return jnp.where(flip, n - k, k)


def _split(key, counts, p_left):
    """Each node's count split between its halves by one Binomial(count, p_left): (N,) -> (2N,)
    (``binomial`` gives 0 and count exactly at p_left = 0 and 1)."""
    left = binomial(key, counts, p_left)
    return jnp.stack([left, counts - left], -1).reshape(-1)


TREE_UNROLLED_LEVELS = 2  # the widest levels, written out; the narrower ones share one rolled binomial


def binomial_tree(key, count, q):
    """Multinomial(round(count), q) counts, as floats, by binary splitting: the count of each node of a
    balanced tree over the V categories is split between its halves by one Binomial(n, q_left / q_node),
    every node of a level at once. Exact in law for any count; ceil(log2 V) sequential levels of
    vectorised binomials instead of V binomials in sequence.

    Compiling a binomial costs seconds of XLA on a 2-core CPU, so the narrow levels run in one
    ``lax.scan`` (each padded to the width of the last of them) and only the
    ``TREE_UNROLLED_LEVELS`` widest, which hold 3/4 of the nodes, are written out: 3 binomials in the
    program instead of L. The whole categorical simulation (V = 1000, M = 10^5, replace, T = 20,
    400 seeds, one process, cache off) with ``binomial``: 4 written out compile in 20.9 s and run in
    1.77 s, 3: 17.9 s and 1.97 s, 2: 13.6 s and 2.14 s (the padded scan draws more); with
    ``jax.random.binomial`` and 4 written out: 11.3 s and 4.4 s. Measure a change in its context."""
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
BLOCK_MAX_COUNT = 32  # measured: V = 100 and 1000 1.7-1.9x faster than searchsorted; beyond, three levels


def _count_at_most(cum, x):
    """``#{i : cum[i] <= x}`` for each ``x`` (``searchsorted(cum, x, side="right")``, the same
    integers). Up to 1024 categories in two levels of comparisons instead of a binary search (whose
    log2 V dependent gathers are what XLA's CPU searchsorted spends its time on): count the blocks of
    32 whose last sum is <= x (every sum in them is, cum being nondecreasing), then the sums <= x in
    the next block, gathered as one row. The whole categorical simulation (replace, T = 99, 400
    seeds, one process, /tmp A/B): V = M = 1000 2.12 s -> 1.16 s, V = 100 1.49 s -> 0.89 s; V = M =
    2000 (63 blocks) 4.90 s -> 7.64 s, so beyond 32 blocks three levels take over (``_three_levels``).
    Same law; the same numbers up to the rounding of the cumulative sums inside a differently fused
    program (1 seed of 400 took another path from generation 4 on)."""
    num = cum.shape[0]
    blocks = -(-num // BLOCK)
    if blocks > BLOCK_MAX_COUNT:
        return _three_levels(cum, x)
    rows = jnp.full(blocks * BLOCK, jnp.inf, cum.dtype).at[:num].set(cum).reshape(blocks, BLOCK)
    full = jnp.minimum(jnp.sum(rows[:, -1][None, :] <= x[:, None], axis=1), blocks - 1)
    return full * BLOCK + jnp.sum(rows[full] <= x[:, None], axis=1)


def _three_levels(cum, x):
    """``_count_at_most`` beyond 1024 categories: the sums padded to a cube of side b = ceil(V^(1/3)),
    then three rounds of b comparisons (the super-blocks' last sums, the blocks' last sums inside the
    chosen super-block, the sums inside the chosen block): 3 b comparisons and two row gathers where
    searchsorted makes log2 V dependent gathers. The whole categorical simulation (replace, 400
    seeds, one process, a test suite beside it): V = M = 2000, T = 99, 8.26 s -> 4.30 s; V = M =
    10^4, T = 20, 14.8 s -> 6.27 s. At V = 1000 it was slower than two levels (1.84 s vs 1.51 s)."""
    num = cum.shape[0]
    side = max(2, math.ceil(num ** (1 / 3) - 1e-9))
    side += side**3 < num  # the float cube root may round down
    cube = jnp.full(side**3, jnp.inf, cum.dtype).at[:num].set(cum).reshape(side, side, side)
    outer = jnp.minimum(jnp.sum(cube[:, -1, -1][None, :] <= x[:, None], axis=1), side - 1)
    inner = jnp.minimum(jnp.sum(cube[outer, :, -1] <= x[:, None], axis=1), side - 1)
    return (outer * side + inner) * side + jnp.sum(cube[outer, inner] <= x[:, None], axis=1)


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
