"""The families' per-sample random draws (issue 10): uniforms and normals from a keyed counter hash.

A batch of M samples needs M (or M x d) variates. ``jax.random``'s threefry spends 20 rounds of
2x32-bit mixing on every pair of words; on a 2-core CPU it was ~80% of drawing M = 10^4 normals and
their mean and variance (5.5 of 6.8 s for 1000 seeds x 20 generations, bits alone against the draw). Here each call takes two 32-bit words from threefry once
(``jax.random.bits(key, (2,))``, so the streams of different keys are as independent as threefry's)
and maps the counter i = 0..n-1 of each variate through a keyed permutation of the 32-bit words:
``mix(mix(i xor k0) + k1)``, ``mix`` the lowbias32 integer hash (Wellons, *Prospecting for hash
functions*, 2018: xor-shift 16, multiply 0x7feb352d, xor-shift 15, multiply 0x846ca68b, xor-shift
16, a bijection of the 32-bit words). Each step is a bijection, so within one call no two counters
give the same word. Float64 variates take two words (counters 2i, 2i+1) for their 52 mantissa bits.

The tests (``tests/test_streams.py``) hold the law to the uniform and normal moments, bin
frequencies, the lag-1 correlation along the counter and the correlation across keys, within
Monte-Carlo error, and show that a weaker mix (one multiply) fails them.
"""
import math

import jax
import jax.numpy as jnp
import numpy as np


def mix(h):
    """lowbias32: a bijection of the uint32 words with low avalanche bias."""
    h = h ^ (h >> 16)
    h = h * jnp.uint32(0x7FEB352D)
    h = h ^ (h >> 15)
    h = h * jnp.uint32(0x846CA68B)
    return h ^ (h >> 16)


def bits(key, num: int):
    """``num`` uint32 words of the stream of ``key``."""
    words = jax.random.bits(key, (2,), jnp.uint32)
    return mix(mix(jnp.arange(num, dtype=jnp.uint32) ^ words[0]) + words[1])


def uniform(key, shape, dtype=None):
    """Uniform [0, 1) variates of ``shape``: float32 from 23 bits of one word, float64 from 52 bits of two."""
    dtype = jnp.dtype(dtype or jnp.result_type(float))
    num = math.prod(shape)
    if dtype == jnp.float64:
        words = bits(key, 2 * num).astype(jnp.uint64).reshape(num, 2)
        mantissa = (words[:, 0] << 20) ^ (words[:, 1] >> 12)
        one = jax.lax.bitcast_convert_type(jnp.uint64(0x3FF0000000000000), jnp.float64)
        value = jax.lax.bitcast_convert_type(mantissa | jnp.uint64(0x3FF0000000000000), jnp.float64) - one
    else:
        word = (bits(key, num) >> 9) | jnp.uint32(0x3F800000)
        value = (jax.lax.bitcast_convert_type(word, jnp.float32) - 1.0).astype(dtype)
    return value.reshape(shape)


def normal(key, shape, dtype=None):
    """Standard normal variates of ``shape`` by the inverse CDF, sqrt(2) erfinv(2u - 1), as ``jax.random.normal``."""
    dtype = jnp.dtype(dtype or jnp.result_type(float))
    lo = np.nextafter(np.array(-1.0, dtype), np.array(0.0, dtype))
    u = jnp.maximum(2.0 * uniform(key, shape, dtype) - 1.0, lo)
    return np.array(np.sqrt(2.0), dtype) * jax.lax.erf_inv(u)
