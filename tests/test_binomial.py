"""The count tree's binomial (``counts.binomial``): exact Binomial(n, p) in law, on both branches.

Inversion (q = min(p, 1 - p), n q <= 10) and BTRS (n q > 10, with its buffer of rejected lanes and
the full-width finish for lanes that do not fit), p above and below 1/2, float32 and float64.
Each case draws 2^16 values and compares their frequencies with scipy's pmf by Pearson's
chi-square (cells merged until each expects >= 5 draws); the exact tail probability of the
statistic must exceed 1e-6 (a false alarm about 1 in 10^6 per case; the seeds are fixed). A walk
that drops the (1 - q) of its ratio, and BTRS with its squeeze set too high, must fail.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from mixopt.families import counts

DRAWS = 1 << 16
CASES = [(20, 0.3), (1000, 0.005), (60, 0.95), (37, 0.5), (1000, 0.3), (100_000, 0.7), (25, 0.45)]


@pytest.fixture(autouse=True)
def _fresh_trace():
    """``counts.binomial`` is jitted: its trace is made once per shape, so a test that patches one of
    its parts (the buffer share, the walk's odds, the squeeze) must trace it again, before and after."""
    counts.binomial.clear_cache()
    yield
    counts.binomial.clear_cache()


def _draw(n, p, dtype="float64", seed=1):
    return np.asarray(counts.binomial(jax.random.key(seed), jnp.full(DRAWS, n, dtype), jnp.full(DRAWS, p, dtype)))


def _chi_square_p(draws, n, p):
    """Tail probability of Pearson's statistic of ``draws`` against Binomial(n, p)."""
    assert np.all(draws == np.round(draws)) and draws.min() >= 0 and draws.max() <= n
    observed = np.bincount(draws.astype(int), minlength=n + 1).astype(float)
    expected = DRAWS * stats.binom.pmf(np.arange(n + 1), n, p)
    cells_o, cells_e, o, e = [], [], 0.0, 0.0
    for ob, ex in zip(observed, expected):  # merge neighbouring cells until each expects >= 5
        o, e = o + ob, e + ex
        if e >= 5:
            cells_o.append(o), cells_e.append(e)
            o, e = 0.0, 0.0
    cells_o[-1] += o
    cells_e[-1] += e
    cells_o, cells_e = np.array(cells_o), np.array(cells_e)
    statistic = ((cells_o - cells_e) ** 2 / cells_e).sum()
    return stats.chi2.sf(statistic, len(cells_e) - 1)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n,p", CASES)
def test_draws_have_the_binomial_law(n, p, dtype):
    assert _chi_square_p(_draw(n, p, dtype), n, p) > 1e-6


def test_degenerate_sizes():
    for n, p, value in ((0, 0.3, 0), (5, 0.0, 0), (7, 1.0, 7), (12, 1.3, 12), (12, -0.1, 0)):
        np.testing.assert_array_equal(_draw(n, p)[:100], value)


def test_lanes_that_overflow_the_buffer_finish_with_the_same_law(monkeypatch):
    monkeypatch.setattr(counts, "BTRS_BUFFER_SHARE", 4096)  # a buffer of 16 lanes: most rejected ones overflow it
    assert _chi_square_p(_draw(1000, 0.3, seed=2), 1000, 0.3) > 1e-6


def test_a_walk_without_its_one_minus_q_fails(monkeypatch):
    monkeypatch.setattr(counts, "_odds", lambda q: q)  # the walk's ratio (n - k) q / (k + 1), not / (1 - q) too
    assert _chi_square_p(_draw(20, 0.3), 20, 0.3) < 1e-6


@pytest.mark.parametrize("n,p", [(25, 0.45), (1000, 0.3)])
def test_btrs_with_a_squeeze_too_high_fails(monkeypatch, n, p):
    monkeypatch.setattr(counts, "_squeeze_height", lambda b: 0.99 + 0.0 * b)  # accepts where the pmf says no
    assert _chi_square_p(_draw(n, p), n, p) < 1e-6
