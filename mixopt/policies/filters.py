"""Filters on a batch before training: curation of synthetic samples, and the provenance filter.

Each is a small NamedTuple of pure functions with an ``off`` counterpart that leaves the batch as it
is, so the generation loop composes them without switches of its own.
"""
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from mixopt.policies.supply import rounder


class Curation(NamedTuple):
    """``weights(key, synth_x, synth_w, fraction, verifier_noise) -> synth_w``: the synthetic slots'
    weights after a verifier keeps the top ``fraction`` of them."""

    weights: Callable


def no_curation() -> Curation:
    return Curation(lambda key, synth_x, synth_w, fraction, verifier_noise: synth_w)


def curation(family, num_samples: int, *, relaxed: bool = False) -> Curation:
    """A verifier scores each synthetic sample by its true log-density plus ``verifier_noise`` times
    a standard normal and keeps the top round(q n) of the n synthetic samples (fractional on the
    relaxed path; Feng et al. 2024, arXiv 2406.07515). Human and contaminated slots rank last."""
    rounded = rounder(relaxed, jnp)
    slots = jnp.arange(num_samples)

    def weights(key, synth_x, synth_w, fraction, verifier_noise):
        score = family.log_prob(family.truth, synth_x)
        score = score + verifier_noise * jax.random.normal(key, score.shape, score.dtype)
        score = jnp.where(synth_w > 0, score, -jnp.inf)
        rank = jnp.zeros(num_samples, synth_w.dtype).at[jnp.argsort(-score)].set(slots.astype(synth_w.dtype))
        return synth_w * jnp.clip(rounded(fraction * jnp.sum(synth_w)) - rank, 0.0, 1.0)

    return Curation(weights)


class Provenance(NamedTuple):
    """The provenance detector flags a synthetic sample with probability tpr, a real one with fpr;
    flagged samples are dropped.

    ``kept(key, count, drop_rate) -> count``: of ``count`` samples, how many pass (statistic level);
    ``passes(key, num_samples, fpr, tpr, dtype) -> (pass_real, pass_contam)``: per-slot pass weights
    of real and of contaminated slots, one uniform per slot (sample level).
    """

    kept: Callable
    passes: Callable


def no_provenance() -> Provenance:
    return Provenance(lambda key, count, drop_rate: count, lambda key, num_samples, fpr, tpr, dtype: (1.0, 1.0))


def provenance(*, relaxed: bool = False) -> Provenance:
    """Binomial drops, or their expectations on the relaxed path."""

    def kept(key, count, drop_rate):
        if relaxed:
            return count * (1.0 - drop_rate)
        return jax.random.binomial(key, count, 1.0 - drop_rate).astype(count.dtype)

    def passes(key, num_samples, fpr, tpr, dtype):
        if relaxed:
            return 1.0 - fpr, 1.0 - tpr
        uniform = jax.random.uniform(key, (num_samples,))
        return (uniform >= fpr).astype(dtype), (uniform >= tpr).astype(dtype)

    return Provenance(kept, passes)
