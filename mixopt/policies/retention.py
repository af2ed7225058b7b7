"""Retention rules: which earlier batches the next model trains on.

A rule is a NamedTuple ``(init, update)`` made by a factory; its buffer is a pytree with a static
shape, so ``accumulate`` over T generations compiles once. Rules work on sufficient statistics
(O(1) memory per retained batch; ``weighted_slots``, O(T), where batches weigh by their age: the age
rule gamma^a, the soft window, a human shelf life) except ``subsample``, whose semantic — N samples
drawn without replacement from what the rule keeps (M from every batch; a ``train_size`` N under any
rule) — needs the samples themselves.

A *batch* for the stats rules is a ``Batch(human, synth)`` of two stats pytrees (provenance is kept
apart so the fit can weight human data); for ``subsample`` it is a ``SampleBatch``.
"""
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

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


class SlotsBuffer(NamedTuple):
    slots: Any  # Batch with a leading axis of length T + 1: batch s in slot s
    num_batches: jax.Array  # () int: batches stored


# How much a batch of each age weighs in the training set, per rule: ``(ages, inputs_t) -> weights``
# (ages may be negative for slots not yet filled; those are masked by the caller).
def _age_weights(ages, inputs_t):
    """gamma^a, with gamma^0 = 1 even at gamma = 0 (and a finite gradient there)."""
    gamma = inputs_t.age_weight
    return jnp.where(ages == 0, 1.0, gamma ** jnp.maximum(ages, 1).astype(gamma.dtype))


FACTORS = {
    "replace": lambda ages, inputs_t: (ages == 0).astype(inputs_t.window.dtype),
    "accumulate": lambda ages, inputs_t: jnp.ones_like(ages, inputs_t.window.dtype),
    "soft_window": lambda ages, inputs_t: jnp.clip(inputs_t.window - ages, 0.0, 1.0),
    "age": _age_weights,
}


def _window_factors(size: int):
    return lambda ages, inputs_t: (ages < size).astype(inputs_t.window.dtype)


def _shelf(ages, shelf_life):
    """1 where a human sample of that age may still be kept (``human_shelf_life`` L: ages 0..L-1), else 0."""
    return jnp.ones_like(ages, bool) if shelf_life is None else ages < shelf_life


def weighted_slots(num_generations: int, combine_fn, scale_fn, empty_fn, factors_fn, shelf_life=None) -> Retention:
    """Every batch kept in a slot of its own and weighted by its age a: ``factors_fn(ages, inputs_t)``
    (``FACTORS``: replace, accumulate, the soft window, gamma^a); a human part older than the shelf
    life (a >= L) weighs 0. Memory O(T) stats.

    ``soft_window`` (the gradient path's window) is one: batch t - a weighs clip(L - a, 0, 1), so at an
    integer L exactly ``window(L)`` and piecewise linear (continuous) in between; the age rule another:
    gamma = 0 is replace, gamma = 1 accumulate.
    """
    merge = combine_batches(combine_fn)
    scale_batch = jax.vmap(lambda slot, human, synth: Batch(scale_fn(slot.human, human), scale_fn(slot.synth, synth)))

    def init(batch0):
        return SlotsBuffer(_stacked_slots(batch0, empty_fn, num_generations + 1), jnp.asarray(1)), batch0

    def update(key, buffer, batch, inputs_t):
        del key
        slots = jax.tree.map(lambda all_, new: all_.at[buffer.num_batches].set(new), buffer.slots, batch)
        ages = buffer.num_batches - jnp.arange(num_generations + 1)  # negative: slots not yet filled
        factors = jnp.where(ages >= 0, factors_fn(ages, inputs_t), 0.0)
        human = factors * _shelf(ages, shelf_life)
        train = _merged(scale_batch(slots, human, factors), merge, empty_fn)
        return SlotsBuffer(slots, buffer.num_batches + 1), train

    return Retention(init, update, False)


def soft_window(num_generations: int, combine_fn, scale_fn, empty_fn) -> Retention:
    """The window with a continuous length L (``inputs_t.window``): ``weighted_slots`` with clip(L - a, 0, 1)."""
    return weighted_slots(num_generations, combine_fn, scale_fn, empty_fn, FACTORS["soft_window"])


class SubsampleBuffer(NamedTuple):
    x: jax.Array  # (T + 1, M, ...) every batch so far, zero-filled beyond
    human: jax.Array  # (T + 1, M) provenance flags
    num_batches: jax.Array  # () int: batches stored


def smallest(values: jax.Array, size: int) -> jax.Array:
    """A mask of the ``size`` smallest of ``values`` >= +0.0 (inf allowed; ties: the lower index first), the
    set ``lax.top_k(-values, size)`` picks, by bisection instead of a partial sort (128 rows of 10 500
    on a 2-core CPU: 4-7 ms against top_k's 30 ms).

    The threshold is the smallest t with #{v <= t} >= size, searched on the float's bits (an integer
    order for non-negative floats, inf included); of the values equal to it, the lowest indices fill
    the places left (a second bisection, on the index).
    """
    ints = jnp.int64 if values.dtype == jnp.float64 else jnp.int32
    bits = jax.lax.bitcast_convert_type(values, ints)
    size = min(size, values.shape[0])

    def first_reaching(count_to, low, high, steps):  # the least m in [low, high] with count_to(m) >= size
        def step(_, bounds):
            lo, hi = bounds
            mid = lo + (hi - lo) // 2
            enough = count_to(mid) >= size
            return jnp.where(enough, lo, mid + 1), jnp.where(enough, mid, hi)
        return jax.lax.fori_loop(0, steps, step, (low, high))[1]

    top = int(np.array(np.inf, values.dtype).view(ints))  # inf's bits: every value is at most it
    threshold = first_reaching(lambda t: jnp.sum(bits <= t), jnp.asarray(0, ints), jnp.asarray(top, ints),
                               top.bit_length())
    below, tied = bits < threshold, bits == threshold
    under, index = jnp.sum(below), jnp.arange(values.shape[0])
    last = first_reaching(lambda i: under + jnp.sum(tied & (index <= i)), 0, values.shape[0] - 1,
                          max(1, (values.shape[0] - 1).bit_length()))
    return below | (tied & (index <= last))


def subsample(num_generations: int, num_samples: int, data_stats_fn, *, train_size: int | None = None,
              factors_fn=FACTORS["accumulate"], shelf_life: int | None = None) -> Retention:
    """Train on N samples (``train_size``; M by default) drawn without replacement from the batches the
    rule keeps (Kazdan et al. 2024's accumulate-subsample: every batch, N = M).

    The draw is weighted by the rule's batch weights (``factors_fn``: replace, window, accumulate, the
    age rule's gamma^a) by Efraimidis and Spirakis's keys (the N smallest of E_i / w_i, E_i iid
    exponential): uniform where the weights are equal, so the N drawn samples each weigh 1 (a training
    set of fixed size). Human samples past their shelf life are not drawn; where fewer than N samples
    are kept, all are. Generation 0 trains on the first N of its M samples (a uniform subset: the
    samples are iid). Memory is O(T M): the sample-level semantic needs every sample ever drawn.
    """
    size = min(train_size or num_samples, (num_generations + 1) * num_samples)

    def stats_of(x, human, keep):
        return Batch(data_stats_fn(x, human * keep), data_stats_fn(x, (1.0 - human) * keep))

    def init(batch0):
        x = jnp.zeros((num_generations + 1,) + batch0.x.shape, batch0.x.dtype).at[0].set(batch0.x)
        human = jnp.zeros((num_generations + 1, num_samples), batch0.human.dtype).at[0].set(batch0.human)
        first = (jnp.arange(num_samples) < size).astype(batch0.human.dtype)
        return SubsampleBuffer(x, human, jnp.asarray(1)), stats_of(batch0.x, batch0.human, first)

    def update(key, buffer, batch, inputs_t):
        x = buffer.x.at[buffer.num_batches].set(batch.x)
        human = buffer.human.at[buffer.num_batches].set(batch.human)
        ages = buffer.num_batches - jnp.arange(num_generations + 1)
        factors = jnp.where(ages >= 0, factors_fn(ages, inputs_t), 0.0)
        weights = factors[:, None] * jnp.where(human > 0, _shelf(ages, shelf_life)[:, None], True)
        positive = weights > 0
        kept = positive.reshape(-1)

        def draw(_):  # -log(1 - U) / w: with equal weights the order of U itself (the N smallest uniforms)
            exponential = -jnp.log1p(-jax.random.uniform(key, human.shape))
            ratio = jnp.minimum(exponential / jnp.where(positive, weights, 1.0), jnp.finfo(exponential.dtype).max)
            priority = jnp.where(positive, ratio, jnp.inf).reshape(-1)  # a tiny weight: last, not dropped
            return (smallest(priority, size) & kept).astype(human.dtype)

        # all that is kept fits (replace, a short window, early generations): no draw. The count follows the
        # generation, not the seed, so under vmap this stays a branch (a select wherever weights are batched)
        every = lambda _: kept.astype(human.dtype)  # noqa: E731
        keep = jax.lax.cond(jnp.sum(kept) <= size, every, draw, None)
        chosen = jnp.nonzero(keep, size=size, fill_value=0)[0]  # the kept, gathered: stats over N, not (T + 1) M
        valid = (jnp.arange(size) < jnp.count_nonzero(keep)).astype(human.dtype)
        train = stats_of(x.reshape((-1,) + x.shape[2:])[chosen], human.reshape(-1)[chosen], valid)
        return SubsampleBuffer(x, human, buffer.num_batches + 1), train

    return Retention(init, update, True)


def make(name: str, family, *, num_generations: int, num_samples: int, window_size: int = 3,
         soft: bool = False, train_size: int | None = None, shelf_life: int | None = None) -> Retention:
    """The registry: rule ``name`` (``RETENTIONS``) for ``family``'s statistics.

    ``soft``: a ``window`` takes its length from ``inputs_t.window`` as a continuous value (at integer
    lengths the same as the window), for the gradient path. ``train_size`` (N): the training set is N
    samples drawn from what the rule keeps (``subsample``: sample level). ``shelf_life`` (L): human
    samples are kept L generations at most (``weighted_slots``; ``replace`` keeps none older anyway).
    """
    if name not in RETENTIONS:
        raise ConfigError(f"policy.retention must be one of {', '.join(RETENTIONS)}, got {name!r}")
    if not isinstance(window_size, int) or isinstance(window_size, bool) or window_size < 1:
        raise ConfigError(f"policy.window must be an integer >= 1, got {window_size!r}")
    factors = {**FACTORS, "subsample": FACTORS["accumulate"],
               "window": FACTORS["soft_window"] if soft else _window_factors(window_size)}[name]
    if name == "subsample" or train_size is not None:
        return subsample(num_generations, num_samples, family.data_stats, train_size=train_size,
                         factors_fn=factors, shelf_life=shelf_life)
    if name == "replace":
        return replace()
    if name == "age" or (soft and name == "window") or shelf_life is not None:  # soft: ``soft_window``
        return weighted_slots(num_generations, family.combine, scale_stats(family), family.empty_stats, factors,
                              shelf_life)
    if name == "accumulate":
        return accumulate(family.combine)
    return window(window_size, family.combine, family.empty_stats)
