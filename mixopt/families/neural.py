"""Neural family: a tiny autoregressive model over short token sequences, trained with optax.

Shows *functional approximation error*: the model class can represent the truth, but each
generation trains it from a fresh random initialisation for a fixed number of optimiser steps, so
what it learns is off by an optimisation error; the next generation learns from that model's
samples, and the errors compound. Fewer ``train_steps``, a worse ``train_lr`` or a narrower
``width`` make it worse.

Truth: sequences x = (x_1, ..., x_L) of L tokens out of V, a Markov chain with Zipf laws: x_1 has
rank x_1 + 1 in a Zipf(a) law, and x_{k+1} given x_k the Zipf rank of (x_{k+1} - x_k - 1) mod V,
so every token has one likely successor and a long tail of rare ones (rare sequences).
Model: p(x) = prod_k softmax(f(x_<k, k))[x_k] with f a one-hidden-layer tanh MLP of ``width``
units on the one-hot prefix (zero-padded) and a one-hot position. It is fitted by ``train_steps``
full-batch steps of Adam (or plain gradient descent) from a fresh initialisation drawn with the
fit's key (``lax.scan``, each step under ``jax.checkpoint``) on the weighted cross-entropy of the
training counts. The relaxed (gradient) path draws counts from the multinomial's normal
approximation (``normal_counts``).

Every one of the N = V^L sequences is enumerated, so a batch is summarised by its counts over them
(additive, like the categorical family's), the exact sampler draws Multinomial(n, model's joint
probabilities), and every metric is exact: ``kl`` (truth || model), ``tv``, ``tail_mass`` (the
rarest sequences holding 10% of the true mass), ``entropy_ratio``, ``collision``. A softmax never
gives zero mass, so ``support`` and ``lost_mass`` are not reported.
"""
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mixopt.errors import ConfigError
from mixopt.families import streams
from mixopt.families.base import Family
from mixopt.families.categorical import (CategoricalParams, distribution_metrics, sampling_probs, tail_set,
                                         weighted_counts, zipf_probs)
from mixopt.families.counts import count_sampler, inverse_cdf

OPTIMIZERS = ("adam", "sgd")  # optax's, imported where a neural family is made (not at start-up)
MAX_SEQUENCES = 4096  # V^L above this makes the enumeration (and every fit) too slow to be small


class NeuralParams(NamedTuple):
    net: Any  # {"w1": (D, H), "b1": (H,), "w2": (H, V), "b2": (V,)}
    temperature: jax.Array  # () sampling temperature at synthesis
    top_p: jax.Array  # () nucleus truncation at synthesis


def markov_zipf_probs(vocab: int, length: int, exponent: float) -> np.ndarray:
    """The truth's joint probabilities of all V^L sequences (row-major, as ``_sequences``), float64."""
    rank = zipf_probs(vocab, exponent)
    successor = np.stack([np.roll(rank, token + 1) for token in range(vocab)])  # [x_k, x_{k+1}]
    tokens = _sequences(vocab, length)
    log_p = np.log(rank[tokens[:, 0]])
    for k in range(1, length):
        log_p += np.log(successor[tokens[:, k - 1], tokens[:, k]])
    return np.exp(log_p)


def normal_counts(key, count, q):
    """Differentiable stand-in for Multinomial(n, q): its normal approximation, n q + sqrt(n)
    (sqrt(q) z - q <sqrt(q), z>) with z standard normal (covariance n (diag q - q q^T), exactly the
    multinomial's), clipped at 0. The Dirichlet stand-in of the categorical family has a pathwise
    gradient with infinite variance where n q_i is small (measured through this family's trainer at
    M = 40: 1% of seeds beyond +-34, the largest 2.6e5, the mean swamped); a softmax model has no
    zero-probability sequence, so the normal approximation's clipping is rarely active."""
    z = jnp.sqrt(q) * jax.random.normal(key, q.shape, q.dtype)
    return jnp.maximum(count * q + jnp.sqrt(count) * (z - q * jnp.sum(z)), 0.0)


def _sequences(vocab: int, length: int) -> np.ndarray:
    """All V^L sequences, (N, L) ints, row-major (sequence n has digits of n in base V)."""
    return np.stack(np.unravel_index(np.arange(vocab**length), (vocab,) * length), axis=1)


def _prefix_tables(vocab: int, length: int):
    """Features of every distinct prefix (P, D) and, per sequence and position, its prefix id (N, L)."""
    tokens = _sequences(vocab, length)
    offsets = np.cumsum([0] + [vocab**k for k in range(length)])  # prefixes of length k start here
    ids = np.zeros_like(tokens)
    features = np.zeros((offsets[-1], max(length - 1, 1) * vocab + length))
    for k in range(length):
        code = np.zeros(len(tokens), np.int64)
        for j in range(k):
            code = code * vocab + tokens[:, j]
        ids[:, k] = offsets[k] + code
        for n in np.unique(ids[:, k]):
            row = tokens[np.argmax(ids[:, k] == n)]
            features[n, [j * vocab + row[j] for j in range(k)]] = 1.0
            features[n, -length + k] = 1.0
    return tokens, ids, features


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"scenario.truth.{name} must be an integer >= {minimum}, got {value!r}")


def _check_positive(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"scenario.truth.{name} must be a number > 0, got {value!r}")


def neural(*, vocab: int = 6, length: int = 3, zipf: float = 1.2, width: int = 16, train_steps: int = 100,
           train_lr: float = 0.05, train_optimizer: str = "adam", temperature: float = 1.0,
           top_p: float = 1.0, num_samples: int | None = None) -> Family:
    """Makes the neural family.

    Args:
      vocab: V >= 2 tokens; length: L >= 1 tokens a sequence (V^L <= 4096, all enumerated).
      zipf: exponent a > 0 of the truth's Zipf laws (larger: sharper, rarer tails).
      width: H >= 1 hidden units of the MLP.
      train_steps: Adam steps per generation (>= 1); fewer: larger approximation error.
      train_lr: the trainer's learning rate (> 0).
      train_optimizer: the trainer, ``"adam"`` or ``"sgd"`` (plain gradient descent). Choose
        ``sgd`` to optimise a policy by gradient through this family: reverse mode through Adam's
        normalisation m / (sqrt(v) + eps) has heavy-tailed per-seed gradients (measured at M = 40:
        1% of seeds beyond +-7, the largest 3.4e3, against +-0.7 and 7 for sgd).
      temperature: sampling temperature > 0 at synthesis; top_p: nucleus truncation in (0, 1].

    Raises:
      ConfigError: a parameter out of range.
    """
    for name, value, minimum in (("vocab", vocab, 2), ("length", length, 1), ("width", width, 1), ("train_steps", train_steps, 1)):
        _check_int(name, value, minimum)
    if vocab**length > MAX_SEQUENCES:
        raise ConfigError(f"scenario.truth.vocab^length must be <= {MAX_SEQUENCES} (every sequence is "
                          f"enumerated), got {vocab}^{length} = {vocab**length}")
    for name, value in (("zipf", zipf), ("train_lr", train_lr), ("temperature", temperature)):
        _check_positive(name, value)
    if isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0 < top_p <= 1:
        raise ConfigError(f"scenario.truth.top_p must be in (0, 1], got {top_p!r}")

    dtype = jnp.result_type(float)
    probs = markov_zipf_probs(vocab, length, zipf)
    num = vocab**length
    tokens, prefix_ids, features = _prefix_tables(vocab, length)
    tokens, prefix_ids, features = jnp.asarray(tokens), jnp.asarray(prefix_ids), jnp.asarray(features, dtype)
    p_true = jnp.asarray(probs, dtype)
    truth = CategoricalParams(p_true, jnp.ones((), dtype), jnp.ones((), dtype))
    tail_mask = jnp.asarray(tail_set(probs))
    counts = count_sampler(num, num_samples)  # M: set from the scenario by make_family
    truncated = top_p < 1  # static: no sort where nothing is truncated
    true_entropy = float(-(probs * np.log(probs)).sum())
    if train_optimizer not in OPTIMIZERS:
        raise ConfigError(f"scenario.truth.train_optimizer must be one of {', '.join(OPTIMIZERS)}, "
                          f"got {train_optimizer!r}")
    import optax

    trainer = getattr(optax, train_optimizer)(train_lr)

    def log_joint(net):
        hidden = jnp.tanh(features @ net["w1"] + net["b1"][None, :])
        log_cond = jax.nn.log_softmax(hidden @ net["w2"] + net["b2"][None, :])  # (P, V)
        return jnp.sum(log_cond[prefix_ids, tokens], axis=1)  # (N,)

    def joint(params):
        if isinstance(params, CategoricalParams):  # the truth
            return params
        return CategoricalParams(jnp.exp(log_joint(params.net)), params.temperature, params.top_p)

    def init_net(key):
        key_1, key_2 = jax.random.split(key)
        d = features.shape[1]
        return {"w1": jax.random.normal(key_1, (d, width), dtype) / np.sqrt(d), "b1": jnp.zeros(width, dtype),
                "w2": jax.random.normal(key_2, (width, vocab), dtype) / np.sqrt(width), "b2": jnp.zeros(vocab, dtype)}

    def fit_fn(key, human, synth, human_weight):
        counts = weighted_counts(human, synth, human_weight)
        target = counts / jnp.maximum(jnp.sum(counts), 1e-12)

        def loss(net):
            return -jnp.sum(target * log_joint(net))

        @jax.checkpoint  # reverse mode keeps each step's carry, not its activations: memory / width
        def step(carry, _):
            net, opt_state = carry
            updates, opt_state = trainer.update(jax.grad(loss)(net), opt_state, net)
            return (optax.apply_updates(net, updates), opt_state), None

        net = init_net(key)
        (net, _), _ = jax.lax.scan(step, (net, trainer.init(net)), None, length=train_steps)
        return NeuralParams(net, jnp.asarray(temperature, dtype), jnp.asarray(top_p, dtype))

    def noise(key, n):
        return streams.uniform(key, (n,), dtype)

    def transform(params, u):
        return inverse_cdf(sampling_probs(joint(params), truncated), u)

    def data_stats(x, weights):
        return jnp.zeros(num, dtype).at[x].add(jnp.broadcast_to(jnp.asarray(weights, dtype), x.shape))

    def metrics(params):
        p = joint(params).probs
        out = distribution_metrics(p, p_true, tail_mask, true_entropy)
        del out["support"], out["lost_mass"]  # a softmax gives every sequence mass
        return {"kl": jnp.sum(p_true * (jnp.log(p_true) - jnp.log(p))), **out}

    def log_prob(params, x):
        return jnp.log(joint(params).probs)[x]

    return Family(
        name="neural",
        truth=truth,
        sample=lambda key, params, n: transform(params, noise(key, n)),
        noise=noise,
        transform=transform,
        data_stats=data_stats,
        sample_stats=lambda key, params, count: counts(key, count, sampling_probs(joint(params), truncated)),
        empty_stats=lambda: jnp.zeros(num, dtype),
        combine=lambda a, b: a + b,
        fit=fit_fn,
        metrics=metrics,
        metric_names=("kl", "tv", "collision", "tail_mass", "entropy_ratio"),
        relaxed_stats=lambda key, params, count: normal_counts(key, count, sampling_probs(joint(params), truncated)),
        log_prob=log_prob,
    )
