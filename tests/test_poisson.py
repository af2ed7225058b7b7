"""The count sampler's Poisson draws (``counts.poisson``): exact Poisson(lam) in law, on both branches.

Inversion (lam <= 10) and PTRS (lam > 10, with its buffer of rejected lanes and the full-width
finish for lanes that do not fit), float32 and float64. Each case draws 2^16 values and compares
their frequencies with scipy's pmf by Pearson's chi-square (cells merged until each expects >= 5
draws); the tail probability of the statistic must exceed 1e-6 (a false alarm about 1 in 10^6 per
case; the seeds are fixed). A walk whose ratio is lam / (k + 2), PTRS with its squeeze set too
high (at lam = 10.5 and 37; at lam = 1000 the hat is so close to the pmf that a squeeze at 0.99
instead of 0.88 shifted the statistic only to p = 0.04), and PTRS with a log-pmf off by
log(k + 1) / 2, must fail.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from mixopt.families import counts

DRAWS = 1 << 16
CASES = [0.3, 4.0, 9.9, 10.5, 37.0, 1000.0, 100_000.0]


@pytest.fixture(autouse=True)
def _fresh_trace():
    """``counts.poisson`` is jitted: its trace is made once per shape, so a test that patches one of
    its parts (the buffer share, the walk's ratio, the squeeze) must trace it again, before and after."""
    counts.poisson.clear_cache()
    yield
    counts.poisson.clear_cache()


def _draw(lam, dtype="float64", seed=1):
    return np.asarray(counts.poisson(jax.random.key(seed), jnp.full(DRAWS, lam, dtype)))


def _chi_square_p(draws, lam):
    """Tail probability of Pearson's statistic of ``draws`` against Poisson(lam)."""
    assert np.all(draws == np.round(draws)) and draws.min() >= 0
    top = int(max(draws.max(), lam + 12 * np.sqrt(lam) + 20))
    observed = np.bincount(draws.astype(int), minlength=top + 1).astype(float)
    expected = DRAWS * stats.poisson.pmf(np.arange(top + 1), lam)
    expected[-1] += DRAWS * stats.poisson.sf(top, lam)
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
@pytest.mark.parametrize("lam", CASES)
def test_draws_have_the_poisson_law(lam, dtype):
    assert _chi_square_p(_draw(lam, dtype), lam) > 1e-6


def test_degenerate_means():
    for lam in (0.0, -0.5):
        np.testing.assert_array_equal(_draw(lam)[:100], 0)


def test_lanes_that_overflow_the_buffer_finish_with_the_same_law(monkeypatch):
    monkeypatch.setattr(counts, "PTRS_BUFFER_SHARE", 4096)  # a buffer of 16 lanes: most rejected ones overflow it
    assert _chi_square_p(_draw(1000.0, seed=2), 1000.0) > 1e-6


def test_a_walk_with_a_wrong_ratio_fails(monkeypatch):
    monkeypatch.setattr(counts, "_pmf_ratio", lambda lam, k: lam / (k + 2.0))
    assert _chi_square_p(_draw(4.0), 4.0) < 1e-6


@pytest.mark.parametrize("lam", [10.5, 37.0])
def test_ptrs_with_a_squeeze_too_high_fails(monkeypatch, lam):
    monkeypatch.setattr(counts, "_squeeze_height", lambda b: 0.99 + 0.0 * b)  # accepts where the pmf says no
    assert _chi_square_p(_draw(lam), lam) < 1e-6


@pytest.mark.parametrize("lam", [37.0, 1000.0])
def test_ptrs_with_a_wrong_log_pmf_fails(monkeypatch, lam):
    right = counts._log_pmf
    monkeypatch.setattr(counts, "_log_pmf", lambda lam, k: right(lam, k) + 0.5 * jnp.log(k + 1.0))
    assert _chi_square_p(_draw(lam), lam) < 1e-6


def test_the_log_pmf_matches_scipy(monkeypatch):
    """PTRS's acceptance test uses ``_log_pmf`` (Stirling's series for log k! beyond 9, a table below):
    in float64 it equals scipy's log pmf to 1e-10 from k = 0 to 10^6; with the series' last term
    (1/1260 (k + 1)^5) dropped it does not."""
    lam = np.array([0.5, 10.0, 37.0, 1000.0, 1e5, 1e6])
    k = np.unique(np.concatenate([np.arange(0, 200), np.round(lam[:, None] * np.linspace(0.5, 1.5, 41)).ravel()]))
    grid_lam, grid_k = (jnp.asarray(v) for v in np.meshgrid(lam, k))
    want = stats.poisson.logpmf(np.asarray(grid_k), np.asarray(grid_lam))
    np.testing.assert_allclose(np.asarray(counts._log_pmf(grid_lam, grid_k)), want, rtol=1e-10, atol=1e-10)
    table = jnp.asarray(counts._STIRLING_TABLE)

    def short_tail(k):
        series = (1.0 / 12 - 1.0 / 360 / ((k + 1) * (k + 1))) / (k + 1)
        return jnp.where(k <= 9, table[jnp.clip(k, 0, 9).astype(jnp.int32)], series)

    monkeypatch.setattr(counts, "_stirling_tail", short_tail)
    assert not np.allclose(np.asarray(counts._log_pmf(grid_lam, grid_k)), want, rtol=1e-10, atol=1e-10)
