"""The families' per-sample stream (``mixopt.families.streams``): the law of its uniforms and normals.

Each check is a z-score against the Monte-Carlo standard error of its statistic under the exact law
(n iid uniforms: mean 1/2 with sd sqrt(1/(12 n)), variance 1/12 with sd sqrt(1/(180 n)); lag-1
correlation sd 1/sqrt(n); a chi-square over B bins mean B - 1, sd sqrt(2 (B - 1)); normals: mean sd
1/sqrt(n), variance sd sqrt(2/n), fourth moment sd sqrt(96/n)), failing beyond 5 (a false alarm
about 1 in 10^6 per check; the seeds are fixed). A weaker mix, one multiply (a Weyl-like lattice),
must fail them: the bins come out too even and consecutive pairs fall on lines.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mixopt.families import streams

N = 1 << 20
Z_MAX = 5.0


def _uniform_defects(u):
    """Names of the checks that the uniforms ``u`` (n,) fail."""
    u = np.asarray(u, np.float64)
    n = u.size
    z = {"mean": (u.mean() - 0.5) / np.sqrt(1 / (12 * n)),
         "variance": (u.var() - 1 / 12) / np.sqrt(1 / (180 * n)),
         "lag-1 correlation": np.corrcoef(u[:-1], u[1:])[0, 1] * np.sqrt(n)}
    for name, cells in (("bins", np.floor(u * 1024).astype(int)),
                        ("pairs", np.floor(u[0::2] * 64).astype(int) * 64 + np.floor(u[1::2] * 64).astype(int))):
        counts = np.bincount(cells, minlength=4096 if name == "pairs" else 1024)
        expected = cells.size / counts.size
        chi2 = ((counts - expected) ** 2 / expected).sum()
        z[f"{name} chi-square"] = (chi2 - (counts.size - 1)) / np.sqrt(2 * (counts.size - 1))
    return sorted(name for name, value in z.items() if not abs(value) < Z_MAX)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_uniforms_have_the_uniform_law(dtype):
    u = np.asarray(streams.uniform(jax.random.key(0), (N,), dtype))  # the tests run with x64 on (conftest)
    assert u.dtype == np.dtype(dtype) and u.min() >= 0.0 and u.max() < 1.0
    assert _uniform_defects(u) == []
    # the float64 path fills 52 mantissa bits: no two of 2^20 coincide (expected collisions ~1e-4)
    assert dtype == "float32" or np.unique(u).size == N


def test_streams_of_different_keys_are_uncorrelated():
    """Pairwise correlations of 200 keys' streams (4096 each): their sd is 1/sqrt(4096) under
    independence; its own Monte-Carlo sd over the 19900 pairs is about 1/sqrt(2 x 19900) relative."""
    keys = jax.random.split(jax.random.key(1), 200)
    streams_of = np.asarray(jax.vmap(lambda k: streams.uniform(k, (4096,), jnp.float32))(keys), np.float64)
    r = np.corrcoef(streams_of)[np.triu_indices(200, 1)] * np.sqrt(4096)
    assert abs(r.mean()) < Z_MAX / np.sqrt(r.size)
    assert abs(r.std() - 1.0) < Z_MAX / np.sqrt(2 * r.size)


def test_normals_have_the_normal_law():
    z = np.asarray(streams.normal(jax.random.key(2), (N,), jnp.float32), np.float64)
    assert abs(z.mean()) * np.sqrt(N) < Z_MAX
    assert abs(z.var() - 1.0) / np.sqrt(2 / N) < Z_MAX
    assert abs(np.mean(z**4) - 3.0) / np.sqrt(96 / N) < Z_MAX
    tail = 2 * 0.0013498980316301  # P(|Z| > 3)
    assert abs(np.mean(np.abs(z) > 3) - tail) / np.sqrt(tail * (1 - tail) / N) < Z_MAX
    assert np.all(np.isfinite(z))


def test_a_one_multiply_mix_fails_the_checks(monkeypatch):
    monkeypatch.setattr(streams, "mix", lambda h: h * jnp.uint32(0x9E3779B1))
    failed = _uniform_defects(streams.uniform(jax.random.key(0), (N,), jnp.float32))
    assert "bins chi-square" in failed or "pairs chi-square" in failed


def test_the_stream_is_fixed_by_its_key():
    key = jax.random.key(3)
    np.testing.assert_array_equal(streams.uniform(key, (5, 3)), streams.uniform(key, (5, 3)))
    assert not np.array_equal(streams.uniform(key, (8,)), streams.uniform(jax.random.key(4), (8,)))
    # a longer draw extends a shorter one: variate i depends on its counter i, not on the shape
    np.testing.assert_array_equal(streams.uniform(key, (8,))[:4], streams.uniform(key, (4,)))
