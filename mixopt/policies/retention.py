"""Retention rules: which earlier batches the next model trains on.

A rule is a NamedTuple ``(init, update)`` made by a factory; its buffer is a pytree with a static
shape, so ``accumulate`` over T generations compiles once. Rules work on sufficient statistics
(O(1) memory per retained batch) except ``subsample``, whose semantic — M samples drawn without
replacement from the union of all batches — needs the samples themselves.

A *batch* for the stats rules is a ``Batch(human, synth)`` of two stats pytrees (provenance is kept
apart so the fit can weight human data); for ``subsample`` it is a ``SampleBatch``.
"""
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from mixopt.errors import ConfigError
from mixopt.families.base import scale_stats
from mixopt.names import RETENTIONS  # noqa: F401 (re-exported)


class Batch(NamedTuple):
    human: Any  # stats of the human samples
    synth: Any  # stats of the synthetic samples


class SampleBatch(NamedTuple):
    x: jax.Array  # (M, ...) samples
    human: jax.Array  # (M,) 1.0 for a human sample, 0.0 for a synthetic one


class Retention(NamedTuple):
    """``init(batch0) -> (buffer, train)``; ``update(key, buffer, batch, inputs_t) -> (buffer, train)``.

    ``train`` is always a ``Batch`` of stats: what the model of this generation is fitted on.
    ``inputs_t`` is the generation's ``StepInputs`` (``soft_window`` reads its ``window`` length; the
    other rules ignore it). ``needs_samples`` says whether batches are ``SampleBatch`` (sample level)
    instead of ``Batch``.
    """

    init: Callable
    update: Callable
    needs_samples: bool


def combine_batches(combine_fn):
    """Lifts a family's ``combine`` from stats to ``Batch`` (human with human, synth with synth)."""
    return lambda a, b: Batch(combine_fn(a.human, b.human), combine_fn(a.synth, b.synth))


def replace() -> Retention:
    """Train on the newest batch only (Shumailov et al. 2024)."""
    return Retention(lambda batch0: ((), batch0), lambda key, buffer, batch, inputs_t: ((), batch), False)


def accumulate(combine_fn) -> Retention:
    """Train on all batches 0..t (Gerstgrasser et al. 2024): a running merge of the stats."""
    merge = combine_batches(combine_fn)

    def update(key, buffer, batch, inputs_t):
        del key, inputs_t
        merged = merge(buffer, batch)
        return merged, merged

    return Retention(lambda batch0: (batch0, batch0), update, False)


def _stacked_slots(batch0, empty_fn, count):
    """``count`` slots of stats with a leading axis: ``batch0`` in slot 0, empty ones after it."""
    empty = Batch(empty_fn(), empty_fn())
    return jax.tree.map(lambda first, blank: jnp.stack([first] + [blank] * (count - 1)), batch0, empty)


def _merged(slots, merge, empty_fn):
    """The union of every slot's stats (empty slots are the identity of ``merge``)."""
    total, _ = jax.lax.scan(lambda acc, slot: (merge(acc, slot), None), Batch(empty_fn(), empty_fn()), slots)
    return total


class WindowBuffer(NamedTuple):
    slots: Any  # Batch with a leading axis of length W
    next_slot: jax.Array  # () int: where the next batch goes


def window(size: int, combine_fn, empty_fn) -> Retention:
    """Train on the last ``size`` batches: a ring buffer of ``size`` stats, merged each generation."""
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ConfigError(f"policy.window must be an integer >= 1, got {size!r}")
    merge = combine_batches(combine_fn)

    def init(batch0):
        return WindowBuffer(_stacked_slots(batch0, empty_fn, size), jnp.asarray(1 % size)), batch0

    def update(key, buffer, batch, inputs_t):
        del key, inputs_t
        slots = jax.tree.map(lambda all_, new: all_.at[buffer.next_slot].set(new), buffer.slots, batch)
        return WindowBuffer(slots, (buffer.next_slot + 1) % size), _merged(slots, merge, empty_fn)

    return Retention(init, update, False)


class SoftWindowBuffer(NamedTuple):
    slots: Any  # Batch with a leading axis of length T + 1: batch s in slot s
    num_batches: jax.Array  # () int: batches stored


def soft_window(num_generations: int, combine_fn, scale_fn, empty_fn) -> Retention:
    """The window with a continuous length (the gradient path's relaxation of ``window``).

    Batch t - a (age a) enters the training set with weight clip(L - a, 0, 1): at an integer L
    the last L batches weigh 1 and the rest 0, exactly ``window(L)``; between integers the oldest
    batch of the window weighs the fractional part, so the fit is continuous (piecewise linear
    weights) in L, which ``update`` reads from ``inputs_t.window`` (a dynamic input). Memory O(T) stats.
    """
    merge = combine_batches(combine_fn)
    scale_batch = jax.vmap(lambda slot, factor: Batch(scale_fn(slot.human, factor), scale_fn(slot.synth, factor)))

    def init(batch0):
        return SoftWindowBuffer(_stacked_slots(batch0, empty_fn, num_generations + 1), jnp.asarray(1)), batch0

    def update(key, buffer, batch, inputs_t):
        del key
        length = inputs_t.window
        slots = jax.tree.map(lambda all_, new: all_.at[buffer.num_batches].set(new), buffer.slots, batch)
        ages = buffer.num_batches - jnp.arange(num_generations + 1)  # negative: slots not yet filled
        factors = jnp.where(ages >= 0, jnp.clip(length - ages, 0.0, 1.0), 0.0)
        train = _merged(scale_batch(slots, factors), merge, empty_fn)
        return SoftWindowBuffer(slots, buffer.num_batches + 1), train

    return Retention(init, update, False)


class SubsampleBuffer(NamedTuple):
    x: jax.Array  # (T + 1, M, ...) every batch so far, zero-filled beyond
    human: jax.Array  # (T + 1, M) provenance flags
    num_batches: jax.Array  # () int: batches stored


def subsample(num_generations: int, num_samples: int, data_stats_fn) -> Retention:
    """Train on M samples drawn without replacement from the union of batches 0..t (Kazdan et al. 2024).

    Memory is O(T M): the sample-level semantic needs every sample ever drawn.
    """

    def stats_of(x, human):
        return Batch(data_stats_fn(x, human), data_stats_fn(x, 1.0 - human))

    def init(batch0):
        x = jnp.zeros((num_generations + 1,) + batch0.x.shape, batch0.x.dtype).at[0].set(batch0.x)
        human = jnp.zeros((num_generations + 1, num_samples), batch0.human.dtype).at[0].set(batch0.human)
        return SubsampleBuffer(x, human, jnp.asarray(1)), stats_of(batch0.x, batch0.human)

    def update(key, buffer, batch, inputs_t):
        del inputs_t
        x = buffer.x.at[buffer.num_batches].set(batch.x)
        human = buffer.human.at[buffer.num_batches].set(batch.human)
        # A uniform M-subset of the valid slots: the M smallest of iid uniforms, invalid slots at +inf.
        valid = jnp.arange(num_generations + 1) <= buffer.num_batches
        priority = jnp.where(valid[:, None], jax.random.uniform(key, human.shape), jnp.inf)
        _, chosen = jax.lax.top_k(-priority.reshape(-1), num_samples)
        flat_x = x.reshape((-1,) + x.shape[2:])
        train = stats_of(flat_x[chosen], human.reshape(-1)[chosen])
        return SubsampleBuffer(x, human, buffer.num_batches + 1), train

    return Retention(init, update, True)


def make(name: str, family, *, num_generations: int, num_samples: int, window_size: int = 3,
         soft: bool = False) -> Retention:
    """The registry: rule ``name`` (``RETENTIONS``) for ``family``'s statistics.

    ``soft``: a ``window`` takes its length from ``inputs_t.window`` as a continuous value
    (``soft_window``: at integer lengths the same as the window), for the gradient path.
    """
    if soft and name == "window":
        return soft_window(num_generations, family.combine, scale_stats(family), family.empty_stats)
    rules = {"replace": lambda: replace(),
             "accumulate": lambda: accumulate(family.combine),
             "window": lambda: window(window_size, family.combine, family.empty_stats),
             "subsample": lambda: subsample(num_generations, num_samples, family.data_stats)}
    if name not in rules:
        raise ConfigError(f"policy.retention must be one of {', '.join(RETENTIONS)}, got {name!r}")
    return rules[name]()
