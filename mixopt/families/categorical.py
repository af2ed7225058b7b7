"""Categorical family: a token or category model fitted by (smoothed, capacity-limited) counts.

Shows *statistical approximation error* on rare events: a category that no sample of a generation
hits gets probability 0 and is gone for good under ``replace``; the tails (rare words, minority
groups) vanish first. Sampling bias at synthesis (``temperature`` < 1, ``top_p`` < 1) speeds the
loss up; a capacity limit (``capacity`` K: the K most frequent categories seen) adds expressivity
error; add-alpha ``smoothing`` keeps every category alive.

Truths: Zipf over ``vocab`` categories (p_i ∝ i^-zipf), real English word frequencies (``source =
"english"``, the top ``vocab`` words of the ``wordfreq`` package: the ``words`` extra), optionally
with a minority group (``minority`` share of the mass on its own ``minority_size`` categories).
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mixopt.errors import ConfigError
from mixopt.families import streams
from mixopt.families.base import Family, traced
from mixopt.families.counts import count_sampler, inverse_cdf, relaxed_counts

SOURCES = ("zipf", "english")
TAIL_SHARE = 0.1  # tail_mass watches the rarest categories that together hold this share of the truth


class CategoricalParams(NamedTuple):
    """Fitted probabilities and how the model samples from them (truth: temperature 1, top_p 1)."""

    probs: jax.Array  # (V,)
    temperature: jax.Array  # ()
    top_p: jax.Array  # ()


def zipf_probs(vocab: int, exponent) -> np.ndarray:
    """p_i ∝ i^-exponent, i = 1..vocab (float64; a JAX array where ``exponent`` is traced)."""
    xp = jnp if traced(exponent) else np
    weights = xp.arange(1, vocab + 1, dtype=xp.float64 if xp is np else None) ** -exponent
    return weights / weights.sum()


def english_words(vocab: int) -> tuple[list[str], np.ndarray]:
    """The ``vocab`` most frequent English words and their normalised frequencies (``wordfreq``)."""
    try:
        import wordfreq
    except ImportError:
        raise ConfigError("scenario.truth.source = \"english\" needs the optional extra: "
                          "pip install 'mixopt[words]'") from None
    words = wordfreq.top_n_list("en", vocab, wordlist="best")
    if len(words) < vocab:
        raise ConfigError(f"scenario.truth.vocab = {vocab} exceeds the {len(words)} English words wordfreq knows")
    freqs = np.array([wordfreq.word_frequency(w, "en", wordlist="best") for w in words], dtype=np.float64)
    return words, freqs / freqs.sum()


def tail_set(probs: np.ndarray, share: float = TAIL_SHARE) -> np.ndarray:
    """Boolean mask of the rarest categories whose cumulative true mass is at most ``share``.

    Ties in probability are broken by index (the later index counts as rarer), so the set is
    well defined for Zipf truths and real word lists alike.
    """
    xp = jnp if traced(probs) else np
    order = xp.lexsort((-xp.arange(len(probs)), probs))  # rarest first
    rare = xp.cumsum(probs[order]) <= share + 1e-12
    if xp is jnp:
        return jnp.zeros(len(probs), bool).at[order].set(rare)
    mask = np.zeros(len(probs), bool)
    mask[order[rare]] = True
    return mask


def sampling_probs(params: CategoricalParams, truncated: bool = True) -> jax.Array:
    """The distribution the model samples from: p^(1/T) renormalised, then top-p truncation.

    Top-p keeps the most probable categories until their mass reaches ``top_p`` (the one that
    crosses it included); ``top_p >= 1`` keeps everything. Zero-probability categories stay zero.
    ``truncated=False`` (static: a family whose top_p is 1) skips the truncation and its sort, the
    costliest step of a generation at large V (measured 3x the count draw at V = 1000).
    """
    p = params.probs
    positive = p > 0
    logits = jnp.where(positive, jnp.log(jnp.where(positive, p, 1.0)) / params.temperature, -jnp.inf)
    q = jax.nn.softmax(logits)
    if not truncated:
        return q
    order = jnp.argsort(-q)
    sorted_q = q[order]
    before = jnp.cumsum(sorted_q) - sorted_q
    keep_sorted = (before < params.top_p) | (params.top_p >= 1.0)
    keep = jnp.zeros(q.shape, bool).at[order].set(keep_sorted)
    q = jnp.where(keep, q, 0.0)
    return q / jnp.sum(q)


def weighted_counts(human, synth, human_weight):
    """Counts to fit on: ``human + synth``, or, with a ``human_weight`` w, the same total with the
    human part carrying the share w of it (an empty side gives its share to the other)."""
    if human_weight is None:
        return human + synth
    n_h, n_s = jnp.sum(human), jnp.sum(synth)
    weight = jnp.where(n_s > 0, human_weight, 1.0)
    weight = jnp.where(n_h > 0, weight, 0.0)
    return (n_h + n_s) * (weight * human / jnp.where(n_h > 0, n_h, 1.0)
                          + (1.0 - weight) * synth / jnp.where(n_s > 0, n_s, 1.0))


def distribution_metrics(p, p_true, tail_mask, true_entropy):
    """Distances of a model distribution ``p`` (V,) to the truth ``p_true`` (DESIGN.md section 5):
    tv, support, lost_mass, collision, tail_mass (over the true mass of ``tail_mask``), entropy_ratio."""
    alive = p > 0
    entropy = -jnp.sum(jnp.where(alive, p * jnp.log(jnp.where(alive, p, 1.0)), 0.0))
    return {
        "tv": 0.5 * jnp.sum(jnp.abs(p - p_true)),
        "support": jnp.mean(alive.astype(p.dtype)),
        "lost_mass": jnp.sum(jnp.where(alive, 0.0, p_true)),
        "collision": jnp.sum(p * p),
        "tail_mass": jnp.sum(jnp.where(tail_mask, p, 0.0)) / jnp.sum(jnp.where(tail_mask, p_true, 0.0)),
        "entropy_ratio": entropy / true_entropy,
    }


def _check_rate(name: str, value, low_open: bool, high_closed: bool = True):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"scenario.truth.{name} must be a number, got {value!r}")
    ok = (value > 0 if low_open else value >= 0) and (value <= 1 if high_closed else value < 1)
    if not ok:
        interval = ("(0" if low_open else "[0") + (", 1]" if high_closed else ", 1)")
        raise ConfigError(f"scenario.truth.{name} must be in {interval}, got {value!r}")


def categorical(*, vocab: int = 1000, zipf: float = 1.1, source: str = "zipf", capacity: int | None = None,
                smoothing: float = 0.0, temperature: float = 1.0, top_p: float = 1.0, minority: float = 0.0,
                minority_size: int | None = None, num_samples: int | None = None) -> Family:
    """Makes the categorical family.

    Args:
      vocab: static number of categories V >= 2.
      zipf: Zipf exponent a > 0 of the ``zipf`` truth (p_i ∝ i^-a).
      source: ``"zipf"`` or ``"english"`` (the top V English words, their real frequencies).
      capacity: K >= 1, the model keeps only the K categories with the largest (weighted) counts;
        ``None`` keeps all.
      smoothing: add-alpha smoothing alpha >= 0 over the kept categories (alpha > 0: every kept
        category keeps mass). ``kl`` is reported where it is finite: with alpha > 0 and no capacity
        limit below V. A capacity-limited model gives the categories outside its K probability 0,
        so KL(truth || model) is infinite there and ``kl`` is not a metric of that model (an
        objective on it is refused; ``tv`` and ``lost_mass`` measure the loss).
      temperature: sampling temperature T > 0 of the model at synthesis (T < 1: sharper).
      top_p: nucleus truncation at synthesis, in (0, 1].
      minority: share in [0, 1) of the true mass on a minority group (0: no groups). The group is
        the last ``minority_size`` categories, Zipf-distributed among themselves with the same
        exponent; the other categories share 1 - minority by Zipf. ``minority_share`` reports the
        model's mass on the group over its true mass (1 = fairly represented).
      minority_size: categories in the minority group, default max(1, V // 10).
      num_samples: M, the batch size (set from the scenario by ``make_family``): the largest count the
        exact sampler draws, which picks its branch (``count_sampler``); None: any count.

    Raises:
      ConfigError: a parameter out of range, or ``english`` without the ``words`` extra.
    """
    dynamic = traced(zipf) or traced(smoothing)
    if isinstance(vocab, bool) or not isinstance(vocab, int) or vocab < 2:
        raise ConfigError(f"scenario.truth.vocab must be an integer >= 2, got {vocab!r}")
    if not traced(zipf) and (isinstance(zipf, bool) or not isinstance(zipf, (int, float)) or not zipf > 0):
        raise ConfigError(f"scenario.truth.zipf must be a number > 0, got {zipf!r}")
    if source not in SOURCES:
        raise ConfigError(f"scenario.truth.source must be one of {', '.join(SOURCES)}, got {source!r}")
    if capacity is not None and (isinstance(capacity, bool) or not isinstance(capacity, int)
                                 or not 1 <= capacity <= vocab):
        raise ConfigError(f"scenario.truth.capacity must be an integer in [1, vocab = {vocab}], got {capacity!r}")
    if not traced(smoothing) and (isinstance(smoothing, bool) or not isinstance(smoothing, (int, float))
                                  or not smoothing >= 0):
        raise ConfigError(f"scenario.truth.smoothing must be a number >= 0, got {smoothing!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
        raise ConfigError(f"scenario.truth.temperature must be a number > 0, got {temperature!r}")
    _check_rate("top_p", top_p, low_open=True)
    _check_rate("minority", minority, low_open=False, high_closed=False)
    if minority_size is None:
        minority_size = max(1, vocab // 10)
    if isinstance(minority_size, bool) or not isinstance(minority_size, int) or not 1 <= minority_size < vocab:
        raise ConfigError(f"scenario.truth.minority_size must be an integer in [1, vocab), got {minority_size!r}")

    if source == "english":
        if traced(zipf):
            raise ConfigError("scenario.truth.zipf is not a parameter of the english source: it cannot be fitted")
        _, probs = english_words(vocab)
    else:
        probs = zipf_probs(vocab, zipf)
    grouped = minority > 0
    group = np.zeros(vocab, bool)
    if grouped:
        group[vocab - minority_size:] = True
        xp = jnp if dynamic else np
        probs = xp.concatenate([(1 - minority) * probs[:vocab - minority_size] / probs[:vocab - minority_size].sum(),
                                minority * zipf_probs(minority_size, zipf if source == "zipf" else 1.0)])
    tail = tail_set(probs)
    smoothed = traced(smoothing) or smoothing > 0  # a fitted smoothing's range is above 0
    finite_kl = smoothed and (capacity is None or capacity >= vocab)
    true_entropy = -(probs * (jnp if traced(probs) else np).log(probs)).sum()
    true_entropy = true_entropy if traced(true_entropy) else float(true_entropy)

    dtype = jnp.result_type(float)
    p_true = jnp.asarray(probs, dtype)
    truth = CategoricalParams(p_true, jnp.ones((), dtype), jnp.ones((), dtype))
    tail_mask = jnp.asarray(tail)
    counts = count_sampler(vocab, num_samples)
    truncated = top_p < 1  # static: no sort where nothing is truncated
    group_mask = jnp.asarray(group)

    def noise(key, num):
        return streams.uniform(key, (num,))

    def transform(params, u):
        return inverse_cdf(sampling_probs(params, truncated), u)

    def sample(key, params, num):
        return transform(params, noise(key, num))

    def data_stats(x, weights):
        weights = jnp.broadcast_to(jnp.asarray(weights, dtype), x.shape)
        return jnp.zeros(vocab, dtype).at[x].add(weights)

    def sample_stats(key, params, count):
        return counts(key, count, sampling_probs(params, truncated))

    def relaxed_stats(key, params, count):
        return relaxed_counts(key, count, sampling_probs(params, truncated))

    def empty_stats():
        return jnp.zeros(vocab, dtype)

    def combine(a, b):
        return a + b

    def fit_fn(key, human, synth, human_weight):
        del key
        counts = weighted_counts(human, synth, human_weight)
        if capacity is None or capacity >= vocab:
            kept = jnp.ones(vocab, bool)
        else:
            _, top = jax.lax.top_k(counts, capacity)
            kept = jnp.zeros(vocab, bool).at[top].set(True)
        if not smoothed:
            kept = kept & (counts > 0)
        mass = jnp.where(kept, counts + smoothing, 0.0)
        return CategoricalParams(mass / jnp.sum(mass), jnp.asarray(temperature, dtype), jnp.asarray(top_p, dtype))

    def metrics(params):
        p = params.probs
        out = distribution_metrics(p, p_true, tail_mask, true_entropy)
        if grouped:
            out["minority_share"] = jnp.sum(jnp.where(group_mask, p, 0.0)) / minority
        if finite_kl:  # every category has mass > 0 here, so the log needs no guard
            out["kl"] = jnp.sum(p_true * (jnp.log(p_true) - jnp.log(p)))
        return out

    names = ("tv", "support", "lost_mass", "collision", "tail_mass", "entropy_ratio")
    names += ("minority_share",) * grouped + ("kl",) * finite_kl
    return Family(
        name="categorical",
        truth=truth,
        sample=sample,
        noise=noise,
        transform=transform,
        data_stats=data_stats,
        sample_stats=sample_stats,
        empty_stats=empty_stats,
        combine=combine,
        fit=fit_fn,
        metrics=metrics,
        metric_names=names,
        relaxed_stats=relaxed_stats,
        log_prob=lambda params, x: jnp.log(params.probs)[x],
    )
