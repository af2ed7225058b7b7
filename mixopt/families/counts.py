"""Samplers of count vectors, shared by the count families (categorical, the mixture's histogram, the
neural family's sequences): the exact Multinomial(n, q) law (``count_sampler``, its branch chosen from
the static sizes) and the relaxed, differentiable stand-in (``relaxed_counts``)."""
import functools
import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mixopt.families import streams


def multinomial_counts(key, count, q):
    """Multinomial(round(count), q) counts, as floats, by V conditional binomials (any count)."""
    return jax.random.multinomial(key, jnp.round(count), q, dtype=q.dtype)


INVERSION_MAX_MEAN = 10.0  # Poisson(lam): the pmf walked up from 0 where lam <= 10, PTRS beyond
INVERSION_MAX_STEPS = 48  # P(X >= 48) < 1e-17 at mean 10: the walk's cap, below the resolution of any uniform
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_STIRLING_TABLE = np.array([math.lgamma(k + 1) - (k + 0.5) * math.log(k + 1) + (k + 1) - _LOG_SQRT_2PI
                            for k in range(10)])


def _stirling_tail(k):
    """log k! - [(k + 1/2) log(k + 1) - (k + 1) + log(2 pi) / 2]: exact below 10, the series beyond."""
    k_sq = (k + 1) * (k + 1)
    series = (1.0 / 12 - (1.0 / 360 - 1.0 / 1260 / k_sq) / k_sq) / (k + 1)
    table = jnp.asarray(_STIRLING_TABLE, k.dtype)[jnp.clip(k, 0, 9).astype(jnp.int32)]
    return jnp.where(k <= 9, table, series)


def _pmf_ratio(lam, k):
    """P(X = k + 1) / P(X = k) of Poisson(lam)."""
    return lam / (k + 1.0)


def _inversion(key, lam):
    """Poisson(lam) by inversion: one uniform u, the pmf walked up from P(X = 0) = exp(-lam) until its
    sum reaches u (for lam <= 10: a few steps)."""
    u = streams.uniform(key, lam.shape, lam.dtype)
    p = jnp.exp(-lam)

    def step(carry):
        i, k, p, cdf = carry
        walk = u > cdf
        p = jnp.where(walk, p * _pmf_ratio(lam, k), p)
        return i + 1, jnp.where(walk, k + 1.0, k), p, jnp.where(walk, cdf + p, cdf)

    def more(carry):
        i, _, _, cdf = carry
        return jnp.any(u > cdf) & (i < INVERSION_MAX_STEPS)

    return jax.lax.while_loop(more, step, (0, jnp.zeros_like(lam), p, p))[1]


def _squeeze_height(b):
    """Below it, a proposal is accepted without evaluating the pmf (the squeeze of PTRS)."""
    return 0.9277 - 3.6224 / (b - 2.0)


def _log_pmf(lam, k):
    """log P(X = k) of Poisson(lam) for k >= 0, written without the cancelling large terms of
    k log lam - log k!: (k + 1 - lam) + k log(lam / (k + 1)) - log(k + 1) / 2 - log(2 pi) / 2 - tail."""
    return ((k + 1.0 - lam) + k * jnp.log1p((lam - k - 1.0) / (k + 1.0)) - 0.5 * jnp.log(k + 1.0) - _LOG_SQRT_2PI
            - _stirling_tail(k))


def _ptrs_round(key, lam):
    """One PTRS proposal for each lane, transformed rejection with squeeze (Hormann, *The transformed
    rejection method for generating Poisson random variables*, Insurance: Mathematics and
    Economics 12, 1993; the constants as in numpy and ``jax.random.poisson``), valid for lam >= 10:
    (k, accepted)."""
    b = 0.931 + 2.53 * jnp.sqrt(lam)
    a = -0.059 + 0.02483 * b
    inv_alpha = 1.1239 + 1.1328 / (b - 3.4)
    u, v = streams.uniform(key, (2,) + lam.shape, lam.dtype)
    u = u - 0.5
    us = 0.5 - jnp.abs(u)
    k = jnp.floor((2.0 * a / us + b) * u + lam + 0.43)
    log_v = jnp.log(v * inv_alpha / (a / (us * us) + b))
    squeeze = (us >= 0.07) & (v <= _squeeze_height(b))
    return k, squeeze | ((k >= 0) & ~((us < 0.013) & (v > us)) & (log_v <= _log_pmf(lam, jnp.maximum(k, 0.0))))


def _until_accepted(key, lam, k, done):
    """Further PTRS rounds (key folded with the round) for the lanes not ``done``, until every lane is."""
    def step(carry):
        i, k, done = carry
        k_new, accept = _ptrs_round(jax.random.fold_in(key, i), lam)
        accept = accept & ~done
        return i + 1, jnp.where(accept, k_new, k), done | accept

    return jax.lax.while_loop(lambda carry: ~jnp.all(carry[2]), step, (0, k, done))[1]


PTRS_COMPACT_MIN = 64  # lanes from which the rejected ones go on in a buffer ...
PTRS_BUFFER_SHARE = 4  # ... a quarter as wide


def _ptrs(key, lam):
    """Poisson(lam) for lam >= 10 by PTRS. Every lane proposes once; about 1 in 9 is rejected, and a
    loop over all lanes would run until the last accepts. From ``PTRS_COMPACT_MIN`` lanes on, the
    rejected ones are gathered into a buffer a quarter as wide and go on there; lanes that did not
    fit (more than a quarter rejected) finish on the full width. Which lanes go on depends only on
    the first round, and each round draws fresh uniforms, so the law is the same."""
    key_first, key_buffer, key_rest = jax.random.split(key, 3)
    k, done = _ptrs_round(key_first, lam)
    if lam.size >= PTRS_COMPACT_MIN:
        shape, lanes = lam.shape, lam.size
        index = jnp.nonzero(~done.ravel(), size=max(1, lanes // PTRS_BUFFER_SHARE), fill_value=lanes)[0]
        lam_buf = lam.ravel().at[index].get(mode="fill", fill_value=1e4)  # filler slots: a lane that accepts at once
        k_buf = _until_accepted(key_buffer, lam_buf, jnp.zeros_like(lam_buf), jnp.zeros(lam_buf.shape, bool))
        k = k.ravel().at[index].set(k_buf, mode="drop").reshape(shape)
        done = done.ravel().at[index].set(True, mode="drop").reshape(shape)
    return _until_accepted(key_rest, lam, k, done)


@jax.jit
def poisson(key, lam):
    """Poisson(lam) draws (floats, the shape of ``lam``), exact in law: inversion where lam <= 10, PTRS
    beyond; lam <= 0 gives 0 (the walk's P(X = 0) = exp(-lam) is then >= 1). Uniforms from ``streams``.
    Both branches run over every lane (static shapes); the lanes of the other branch are given means
    that finish at once (0; 10^4). Jitted so that its trace and its batching under ``vmap`` are made
    once per shape."""
    small = lam <= INVERSION_MAX_MEAN
    key_inversion, key_ptrs = jax.random.split(key)
    low = _inversion(key_inversion, jnp.where(small, lam, 0.0))
    high = _ptrs(key_ptrs, jnp.where(small, 1e4, lam))
    return jnp.where(small, low, high)


POISSON_OFFSET = 4.0  # the Poisson counts' total has mean n - 4 sqrt(n): above n in about 3e-5 of draws
POISSON_CHUNK_SDS = 9.0  # the top-up draws ceil(9 sqrt(M)) categories a round: one round but in ~3e-7 of draws
POISSON_CHUNK = 2048  # ... or this many without a static bound on the count


@functools.partial(jax.jit, static_argnames="chunk")
def poissonised_counts(key, count, q, *, chunk: int):
    """Multinomial(round(count), q) counts, as floats, exact in law for any count: independent
    Poisson(lam q_i) counts with lam = n - 4 sqrt(n), drawn again while their total N exceeds n, then
    n - N more categories drawn from q by ``inverse_cdf``, ``chunk`` at a time. Why it is exact:
    given N = m, Poisson counts are Multinomial(m, q) (for every m, so also given N <= n), and
    Multinomial(m, q) + Multinomial(n - m, q) is Multinomial(n, q). Cost: V Poisson draws and about
    4 sqrt(n) inverse-CDF draws, independent of V's binary depth; it replaced a binomial splitting
    tree (log2 V levels of BTRS binomials) that compiled 2.2-2.6x and ran 2.4-3.2x slower (quiet A/B
    in one process, whole categorical simulation; benchmarks/README.md)."""
    n = jnp.round(count)
    lam = jnp.maximum(n - POISSON_OFFSET * jnp.sqrt(n), 0.0)
    key_poisson, key_top_up = jax.random.split(key)

    def redraw(carry):
        i, _, _ = carry
        x = poisson(jax.random.fold_in(key_poisson, i), lam * q)
        return i + 1, x, jnp.sum(x) <= n

    x = jax.lax.while_loop(lambda carry: ~carry[2], redraw, (0, jnp.zeros_like(q), jnp.array(False)))[1]
    slots = jnp.arange(chunk)

    def top_up(carry):
        i, x, missing = carry
        x = x + _drawn_counts(jax.random.fold_in(key_top_up, i), missing, q, slots)
        return i + 1, x, missing - jnp.minimum(missing, chunk)

    return jax.lax.while_loop(lambda carry: carry[2] > 0, top_up, (0, x, n - jnp.sum(x)))[1]


INVERSE_CDF_MAX_RATIO = 10  # M uniforms beat V Poisson draws up to about M = 10 V (benchmarks/README.md)


class CountSampler(NamedTuple):
    """``draw(key, count, q) -> (V,)`` Multinomial(round(count), q) counts (floats), exact in law;
    ``method`` says which branch the static sizes chose."""

    draw: Callable
    method: str

    def __call__(self, key, count, q):
        return self.draw(key, count, q)


def _drawn_counts(key, count, q, slots):
    """The counts of the first round(count) of ``len(slots)`` categories drawn from ``q`` by
    ``inverse_cdf`` (``slots``: ``arange`` of that length; count <= its length)."""
    index = inverse_cdf(q, streams.uniform(key, slots.shape, q.dtype))
    return jnp.zeros_like(q).at[index].add((slots < jnp.round(count)).astype(q.dtype))


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
    vectorised. ``poisson`` (beyond, or without a static bound): ``poissonised_counts``, V Poisson
    draws topped up to the count, its cost about independent of M. ``binomials``:
    ``jax.random.multinomial``, V conditional binomials in sequence (the sampler before issue 10;
    kept as the benchmarks' reference). A count above ``max_count`` is not allowed on the
    ``inverse_cdf`` branch. Every branch skips its draw where round(count) is 0 (``_unless_empty``).
    """
    if method is None:
        method = ("inverse_cdf" if max_count is not None and max_count <= INVERSE_CDF_MAX_RATIO * num_categories
                  else "poisson")
    if method == "binomials":
        return CountSampler(_unless_empty(multinomial_counts), method)
    if method == "poisson":
        chunk = POISSON_CHUNK if max_count is None else 64 * math.ceil(POISSON_CHUNK_SDS * math.sqrt(max_count) / 64)
        return CountSampler(_unless_empty(functools.partial(poissonised_counts, chunk=chunk)), method)
    if method != "inverse_cdf" or max_count is None:
        raise ValueError(f"count sampler {method!r} needs a static max_count")
    slots = jnp.arange(max_count)
    return CountSampler(_unless_empty(lambda key, count, q: _drawn_counts(key, count, q, slots)), method)


def _unless_empty(draw):
    """``draw`` run only where round(count) > 0; zeros otherwise (what it gives there anyway). A
    generation without human samples (the budget spent, lambda_t = 0) still asks for their counts,
    and the draw's cost does not depend on the count: the loop runs the draw once or not at all,
    and under ``vmap`` it is skipped where no seed has a count. Same numbers; the categorical
    simulation at lambda = 0 (V = M = 1000, T = 99, 400 seeds, one process) 0.88 s -> 0.59 s."""
    def guarded(key, count, q):
        def once(carry):
            return jnp.array(False), draw(key, count, q)

        return jax.lax.while_loop(lambda carry: carry[0], once, (jnp.round(count) > 0, jnp.zeros_like(q)))[1]

    return guarded


def relaxed_counts(key, count, q):
    """Differentiable stand-in for Multinomial(n, q): n * Dirichlet(n q), the normalised Gamma(n q_i)
    (the Poissonised counts conditioned on their total). Same mean n q; variance
    n q_i (1 - q_i) n / (n + 1). loggamma keeps tiny shapes finite."""
    shape = jnp.maximum(count * q, 1e-12)
    log_g = jnp.where(q > 0, jax.random.loggamma(key, shape), -jnp.inf)
    return count * jax.nn.softmax(log_g)
