"""The interface every model family implements.

A family is a NamedTuple of pure functions made by a factory (optax's ``GradientTransformation``
habit). Shape-fixing sizes (dimension, vocabulary) live in the factory's closure as static ints;
everything that changes (parameters, sufficient statistics) is a pytree the caller carries.

Sufficient statistics ("stats") are the currency of the generation loop: a batch of samples is
summarised by ``data_stats``; two summaries merge with ``combine`` (associative, with
``empty_stats()`` as identity); the ``exact`` sampler draws the summary of ``n`` samples directly
from its sampling distribution with ``sample_stats``. Counts inside stats are floats so that the
relaxed (differentiable) simulation can use continuous counts.
"""
from typing import Any, Callable, NamedTuple

import jax

Params = Any
Stats = Any


class Family(NamedTuple):
    """A model family: the truth, the model class, its fit and its distances to the truth.

    Attributes:
      name: registry name, e.g. ``"gaussian"``.
      truth: parameters of the real distribution (a pytree of arrays).
      sample: ``(key, params, num) -> samples`` with ``num`` a static int; samples have a leading
        axis of length ``num``. Always ``transform(params, noise(key, num))``.
      noise: ``(key, num) -> noise``: the parameter-free randomness of ``num`` samples.
      transform: ``(params, noise) -> samples``: so that one noise draw can serve the human slots
        (under the truth) and the synthetic slots (under the model) of a batch: the naive sampler
        draws M noises a generation, not 2M.
      data_stats: ``(samples, weights) -> stats``: weighted sufficient statistics; ``weights`` has
        shape ``(num,)`` with entries in [0, 1] (0 drops a sample).
      sample_stats: ``(key, params, count) -> stats``: the stats of ``count`` iid samples drawn from
        their exact sampling distribution (cost independent of ``count``); ``None`` when the family
        has no exact sampler.
      empty_stats: ``() -> stats`` of no samples, the identity of ``combine``.
      combine: ``(stats, stats) -> stats`` of the union of two sample sets.
      fit: ``(key, human_stats, synth_stats, human_weight) -> params``. ``human_weight`` is the share
        of the total loss weight carried by the human samples, or ``None`` for the count share
        (plain pooling).
      metrics: ``params -> dict[str, scalar]``: distances of the model to the truth.
      metric_names: the keys ``metrics`` returns, in display order.
      relaxed_stats: ``(key, params, count) -> stats``, a differentiable stand-in for
        ``sample_stats`` (continuous in ``count`` and the parameters) that the relaxed simulation
        (the gradient path) uses; ``None``: ``sample_stats`` is differentiable already.
      log_prob: ``(params, samples) -> (num,)`` log density (or mass) of each sample under
        ``params``; the curation verifier scores synthetic samples by it under the truth.
      scale: ``(stats, factor) -> stats`` of the same samples with every weight multiplied by
        ``factor`` (a scalar >= 0; 0 gives stats that ``combine`` treats as empty); ``None``: every
        leaf of the stats is a weighted sum, so scaling the leaves is right (see ``scale_stats``).
    """

    name: str
    truth: Params
    sample: Callable[..., Any]
    noise: Callable[..., Any]
    transform: Callable[..., Any]
    data_stats: Callable[..., Stats]
    sample_stats: Callable[..., Stats] | None
    empty_stats: Callable[[], Stats]
    combine: Callable[[Stats, Stats], Stats]
    fit: Callable[..., Params]
    metrics: Callable[[Params], dict]
    metric_names: tuple[str, ...]
    relaxed_stats: Callable[..., Stats] | None = None
    log_prob: Callable[..., Any] | None = None
    scale: Callable[..., Stats] | None = None


def scale_stats(family: Family) -> Callable[..., Stats]:
    """The family's ``scale``, or the leafwise product for stats that are weighted sums."""
    if family.scale is not None:
        return family.scale
    return lambda stats, factor: jax.tree.map(lambda leaf: leaf * factor, stats)


def traced(value) -> bool:
    """Whether a truth parameter is a JAX value (a key a calibration fits, ``mixopt.calibration.world``):
    the factory then builds the truth from it inside the trace and leaves its range check to the caller."""
    return isinstance(value, jax.Array)
