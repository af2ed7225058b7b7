"""The count families' exact sampler (``categorical.count_sampler``): Multinomial(n, q) counts, in law.

Two branches, chosen at build time from the static sizes: ``inverse_cdf`` (M uniforms, searchsorted
on the cumulative probabilities, counts by scatter-add: O(M log V), no V-long chain) where M <= 10 V,
and ``poisson`` (V Poisson counts with total below n, topped up by inverse CDF: any count) beyond
it. ``binomials`` (``jax.random.multinomial``: V conditional binomials) is the reference the
benchmarks compare with.

Checks, on every branch:
- the moments: mean n q_i and covariance n (diag q - q q^T), each entry within 4.5 Monte-Carlo
  standard errors (SE of a mean over S draws: sample std / sqrt(S); of a covariance entry: the std
  of the products of centred counts / sqrt(S)). 4.5, not 4: the test takes the largest |z| of 35
  entries (7 means, 28 covariances), and Bonferroni at 4.5 keeps its false-alarm rate near
  35 x 6.8e-6 = 2.4e-4. The same draws against q off by 10% in one category are rejected;
- the Zipf chain of the issue (V = 1000, a = 1.1, M = 1000, lambda = 0, replace): the support and
  lost mass at generations 0, 9 and 99 against their exact values. Category i's count is a
  Wright-Fisher chain c_{t+1} ~ Bin(M, c_t / M) started at Bin(M, p_i), so P(c_t = 0) is the
  transition matrix's power applied to the start (computed here in numpy): support 0.279693,
  0.082561, 0.015056. |z| < 4 with the SE of the per-seed values; a chain with M - 100 samples is
  rejected.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import binom

from _utils import z_score
from mixopt import montecarlo
from mixopt.families.categorical import categorical, sampling_probs, zipf_probs
from mixopt.families import counts as counts_module
from mixopt.families.counts import count_sampler
from mixopt.generation import SimInputs, simulator
from mixopt.policies.retention import replace

Q = np.array([0.35, 0.25, 0.2, 0.1, 0.07, 0.03, 0.0])  # a zero-probability category is never drawn
DRAWS = 20000


def _moments_z(counts, n, q):
    centred = counts - n * q
    mean_z = centred.mean(0) / (centred.std(0, ddof=1) / np.sqrt(len(counts)) + 1e-300)
    products = centred[:, :, None] * centred[:, None, :]
    cov = n * (np.diag(q) - np.outer(q, q))
    se = products.std(0, ddof=1) / np.sqrt(len(counts))
    cov_z = np.where(se > 0, (products.mean(0) - cov) / np.where(se > 0, se, 1.0), 0.0)
    return np.abs(mean_z).max(), np.abs(cov_z).max()


def _draw(method, n, q, max_count):
    sampler = count_sampler(len(q), max_count, method=method)
    keys = jax.random.split(jax.random.key(11), DRAWS)
    return np.asarray(jax.jit(jax.vmap(lambda k: sampler(k, jnp.asarray(float(n)), jnp.asarray(q))))(keys))


@pytest.mark.parametrize("method", ["inverse_cdf", "poisson", "binomials"])
@pytest.mark.parametrize("n", [1, 17, 40])
def test_counts_have_the_multinomial_moments(method, n):
    counts = _draw(method, n, Q, max_count=40)
    assert counts.shape == (DRAWS, len(Q))
    np.testing.assert_array_equal(counts.sum(1), n)
    assert np.all(counts[:, -1] == 0)  # the zero-probability category
    mean_z, cov_z = _moments_z(counts, n, Q)
    assert mean_z < 4.5 and cov_z < 4.5, (mean_z, cov_z)
    # power: the same draws against a q that is 10% off in its second category
    wrong = Q.copy()
    wrong[1] *= 1.1
    wrong[0] -= Q[1] * 0.1
    if n > 1:
        assert max(_moments_z(counts, n, wrong)) > 4.5


def test_the_branch_follows_the_sizes():
    assert count_sampler(100, 1000).method == "inverse_cdf"  # M <= 10 V
    assert count_sampler(100, 1001).method == "poisson"
    assert count_sampler(100, None).method == "poisson"  # any count: no static bound to draw M slots


def _exact_chain(V, a, M, generations):
    """(support, lost mass) of the lambda = 0 replace chain at ``generations``, exactly."""
    p = zipf_probs(V, a)
    k = np.arange(M + 1)
    step = binom.pmf(k[None, :], M, k[:, None] / M)
    dead = (k == 0).astype(float)  # P(c_t = 0 | c_0 = k), t = 0
    start = binom.pmf(k[None, :], M, p[:, None])
    out = {}
    for t in range(max(generations) + 1):
        if t in generations:
            gone = start @ dead
            out[t] = (1 - gone.mean(), float(p @ gone))
        dead = step @ dead
    return out


def test_the_exact_chain_values_of_the_issue():
    exact = _exact_chain(1000, 1.1, 1000, (0, 9, 99))
    np.testing.assert_allclose([exact[t][0] for t in (0, 9, 99)], [0.279693, 0.082561, 0.015056], atol=1e-6)


@pytest.mark.parametrize("method,generations,seeds", [("inverse_cdf", 99, 300), ("poisson", 99, 300)])
def test_the_zipf_chain_matches_its_exact_survival(method, generations, seeds):
    family = categorical(vocab=1000, zipf=1.1, num_samples=1000)  # M <= 10 V: inverse_cdf
    if method == "poisson":
        draw = count_sampler(1000, None)
        family = family._replace(sample_stats=lambda key, params, count: draw(key, count, sampling_probs(params)))
    sim = simulator(family, replace(), num_generations=generations, num_samples=1000)
    inputs = SimInputs(np.zeros(generations), np.zeros(generations), np.asarray(np.inf))
    info = montecarlo.batched(sim)(montecarlo.seed_keys(0, seeds), inputs)
    out = {name: np.asarray(value) for name, value in info.metrics.items()}
    checked = [t for t in (0, 9, 99) if t <= generations]
    exact = _exact_chain(1000, 1.1, 1000, tuple(checked))
    for t in checked:
        assert abs(z_score(out["support"][:, t], exact[t][0])) < 4, (t, out["support"][:, t].mean(), exact[t][0])
        assert abs(z_score(out["lost_mass"][:, t], exact[t][1])) < 4, t
    # power: the chain of M = 900 samples is rejected at the last checked generation
    fewer = _exact_chain(1000, 1.1, 900, (checked[-1],))[checked[-1]]
    assert abs(z_score(out["support"][:, checked[-1]], fewer[0])) > 4


@pytest.mark.parametrize("method", ["poisson", "binomials"])
def test_large_counts_have_the_multinomial_moments(method):
    """M >> V, where the Poisson draws take their rejection branch (lam q >= 10): the same moment check."""
    counts = _draw(method, 5000, Q, max_count=None)
    np.testing.assert_array_equal(counts.sum(1), 5000)
    assert max(_moments_z(counts, 5000, Q)) < 4.5
    wrong = Q.copy()
    wrong[1] *= 1.01  # 1% off: 12.5 counts, ~57 standard errors of the mean over 20000 draws
    wrong[0] -= Q[1] * 0.01
    assert max(_moments_z(counts, 5000, wrong)) > 4.5


def test_the_redraws_and_top_up_rounds_keep_the_law(monkeypatch):
    """The Poisson branch's two loops, made to run many rounds: with its mean one standard deviation
    below n (offset 1) the Poisson total exceeds n in about 1 in 6 draws, which are drawn again; with
    rounds of 32 slots the top-up takes several (at n = 5000 about 71 are missing: 3 rounds). n = 37 and 5000 in one
    program (10^4 draws each), V = 40 with an empty category inside; the moment check over 40
    means and 820 covariances at threshold 5 (Bonferroni 860 x 5.7e-7 = 5e-4). A top-up that draws
    its categories uniformly instead of from q is rejected."""
    monkeypatch.setattr(counts_module, "POISSON_OFFSET", 1.0)
    q = 1.0 / np.arange(1, 41) ** 1.1
    q[17] = 0.0
    q /= q.sum()
    sizes = np.repeat([37.0, 5000.0], DRAWS // 2)

    def draw():
        counts_module.poissonised_counts.clear_cache()
        sampler = jax.jit(jax.vmap(lambda k, n: counts_module.poissonised_counts(k, n, jnp.asarray(q), chunk=32)))
        return np.asarray(sampler(jax.random.split(jax.random.key(12), len(sizes)), jnp.asarray(sizes)))

    counts = draw()
    np.testing.assert_array_equal(counts.sum(1), sizes)
    assert np.all(counts[:, 17] == 0)
    for n in (37, 5000):
        assert max(_moments_z(counts[sizes == n], n, q)) < 5, n
    uniform_top_up = counts_module.inverse_cdf
    monkeypatch.setattr(counts_module, "inverse_cdf", lambda q, u: uniform_top_up(jnp.ones_like(q), u))
    wrong = draw()
    for n in (37, 5000):
        assert max(_moments_z(wrong[sizes == n], n, q)) > 5, n
    counts_module.poissonised_counts.clear_cache()


@pytest.mark.parametrize("num", [1, 31, 32, 33, 1000, 1024, 1025, 2000, 4913, 4914, 10_000])
def test_the_two_level_search_counts_like_searchsorted(num):
    """``inverse_cdf``'s two-level search (blocks of 32, up to 1024 categories; beyond, three levels
    over a cube of side ceil(V^(1/3)): 1025 and 2000 pad it, 4913 = 17^3 fills it, 4914 needs side 18)
    gives searchsorted's integers exactly, at block edges, on ties (x equal to a cumulative
    sum), at 0 and at the total, with empty categories, in float32 and float64."""
    from mixopt.families.counts import _count_at_most

    rng = np.random.default_rng(num)
    for dtype in (np.float32, np.float64):
        q = rng.random(num) ** 3
        q[rng.random(num) < 0.2] = 0.0
        q[0] += 1e-3
        cum = jnp.cumsum(jnp.asarray(q, dtype))
        x = jnp.concatenate([jnp.asarray(rng.random(4000), dtype) * cum[-1], cum[:64], jnp.zeros(1, dtype), cum[-1:]])
        np.testing.assert_array_equal(jax.jit(_count_at_most)(cum, x), jnp.searchsorted(cum, x, side="right"))


@pytest.mark.parametrize("method", ["inverse_cdf", "poisson", "binomials"])
def test_an_empty_count_skips_the_draw_and_keeps_the_numbers(method):
    """``count_sampler`` runs its draw only where round(count) > 0 (``_unless_empty``): under ``vmap``
    a positive count among zeros gives the unguarded draw's numbers element for element and zeros
    beside it, and the draw does not run at all where every count is 0 (a host callback inside it
    counts its runs; a guard that draws and then masks, ``where(count > 0, draw, 0)``, runs it)."""
    sampler = count_sampler(len(Q), 40, method=method)
    inner = {"inverse_cdf": lambda k, n, q: counts_module._drawn_counts(k, n, q, jnp.arange(40)),
             "poisson": lambda k, n, q: counts_module.poissonised_counts(k, n, q, chunk=64),
             "binomials": counts_module.multinomial_counts}[method]
    keys = jax.random.split(jax.random.key(5), 8)
    sizes = jnp.asarray([0.0, 17.0, 0.0, 40.0, 0.0, 1.0, 0.0, 0.4])  # 0.4 rounds to 0
    q = jnp.asarray(Q)
    guarded = np.asarray(jax.jit(jax.vmap(sampler, in_axes=(0, 0, None)))(keys, sizes, q))
    direct = np.asarray(jax.jit(jax.vmap(inner, in_axes=(0, 0, None)))(keys, sizes, q))
    np.testing.assert_array_equal(guarded, direct)
    np.testing.assert_array_equal(guarded.sum(1), [0, 17, 0, 40, 0, 1, 0, 0])

    runs = []

    def counted(key, count, q):
        jax.debug.callback(lambda: runs.append(1))
        return inner(key, count, q)

    def masked(key, count, q):
        return jnp.where(jnp.round(count) > 0, counted(key, count, q), 0.0)

    for draw, expected in ((counts_module._unless_empty(counted), 0), (masked, 1)):
        runs.clear()
        jax.block_until_ready(jax.jit(jax.vmap(draw, in_axes=(0, 0, None)))(keys, jnp.zeros(8), q))
        assert (len(runs) > 0) == expected, draw
