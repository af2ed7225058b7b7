"""The relaxed window (``policies.soft_window``): the gradient path's continuous window length.

Independent truths: at an integer length L it is ``window(L)`` path by path (same keys, float64,
rtol 1e-9: the two differ only in the order of the merges); its training set is the weighted sum
clip(L - age, 0, 1) of the batches, checked on one-hot count batches; ``jax.grad`` in L agrees with
a central finite difference per path (weights are linear in L between integers, h = 1e-5: O(h^2),
rtol 1e-5); and the gradient optimiser lengthens the window where longer memory is known to help.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mixopt import config as config_mod
from mixopt import montecarlo, objectives
from mixopt.generation import StepInputs
from mixopt.policies import retention as policies
from mixopt.errors import ConfigError
from mixopt.families import make_family
from mixopt.families.base import scale_stats
from mixopt.optimizers.evaluate import evaluate
from mixopt.optimizers.gradient import optimize_gradient
from mixopt.policies.retention import Batch

T = 6


def _config(family="gaussian", window=3, fraction=0.0, **truth):
    return config_mod.from_dict({"scenario": {"family": family, "generations": T, "samples": 40, "truth": truth},
                                 "policy": {"retention": "window", "window": window, "human_fraction": fraction}})


def _metrics(config, soft, length=None):
    sim, inputs = montecarlo.build(config, soft_window=soft)
    if length is not None:
        inputs = inputs._replace(window=jnp.asarray(length, inputs.human_fraction.dtype))
    info = jax.jit(jax.vmap(sim.rollout, in_axes=(0, None)))(montecarlo.seed_keys(0, 32), inputs)
    return {k: np.asarray(v) for k, v in info.metrics.items()}


@pytest.mark.parametrize("family,truth", [("gaussian", {}), ("categorical", {"vocab": 30}),
                                          ("regression", {"dim": 3})])
def test_integer_length_is_the_window(family, truth):
    config = _config(family, 3, 0.1, **truth)
    exact, soft = _metrics(config, False), _metrics(config, True)
    for name in exact:
        np.testing.assert_allclose(soft[name], exact[name], rtol=1e-9, atol=1e-12)
    # power: the soft window at length 3 is not the window of 4
    longer = _metrics(_config(family, 4, 0.1, **truth), False)
    name = next(k for k in exact if k != "human_used")
    assert np.abs(soft[name][:, -1] - longer[name][:, -1]).max() > 1e-3


def test_training_set_weights_are_clip_of_length_minus_age():
    family = make_family("categorical", {"vocab": 8}, num_samples=10)
    rule = policies.soft_window(5, family.combine, scale_stats(family), family.empty_stats)
    one_hot = jnp.eye(8)
    buffer, _ = rule.init(Batch(one_hot[0], family.empty_stats()))
    for t in range(1, 6):
        buffer, train = rule.update(None, buffer, Batch(one_hot[t], one_hot[t] * 2.0), 
                                    StepInputs(*[None] * 8, window=2.5, age_weight=None, human_flow=None, generation=None))
    # batches 5 and 4 weigh 1, batch 3 (age 2) weighs 0.5, older ones 0
    np.testing.assert_allclose(train.human, [0, 0, 0, 0.5, 1, 1, 0, 0])
    np.testing.assert_allclose(train.synth, 2 * np.array([0, 0, 0, 0.5, 1, 1, 0, 0]))
    assert not np.allclose(train.human, [0, 0, 0, 1, 1, 1, 0, 0])  # a window of 3 would differ


def test_gaussian_scale_keeps_the_mean_and_scales_count_and_scatter():
    family = make_family("gaussian", {"dim": 2}, num_samples=10)
    x = jax.random.normal(jax.random.key(0), (10, 2))
    stats = family.data_stats(x, jnp.ones(10))
    half = family.scale(stats, 0.5)
    direct = family.data_stats(x, 0.5 * jnp.ones(10))
    for a, b in zip(half, direct):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    assert not np.allclose(jax.tree.map(lambda s: s * 0.5, stats).mean, direct.mean)  # leafwise is wrong here


def test_a_new_length_does_not_recompile():
    from _utils import count_compilations

    sim, inputs = montecarlo.build(_config("gaussian", 3, 0.1), soft_window=True)
    run, keys = montecarlo.batched(sim), montecarlo.seed_keys(0, 8)
    first = jax.block_until_ready(run(keys, inputs))
    longer = inputs._replace(window=jnp.asarray(4.5, inputs.window.dtype))
    with count_compilations() as compiles:
        second = jax.block_until_ready(run(keys, longer))
    assert compiles.count == 0
    assert not np.allclose(first.metrics["kl"], second.metrics["kl"])  # the new length reached the computation


def test_gradient_in_the_length_matches_finite_difference():
    config = _config("gaussian", 3, 0.2, fit="mean")
    sim, inputs = montecarlo.build(config, relaxed=True, soft_window=True)
    keys = montecarlo.seed_keys(0, 16)

    def final_kl(length, key):
        return sim.rollout(key, inputs._replace(window=length)).metrics["kl"][-1]

    length, h = 2.6, 1e-5
    grads = np.asarray(jax.jit(jax.vmap(jax.grad(final_kl), in_axes=(None, 0)))(length, keys))
    value = jax.jit(jax.vmap(final_kl, in_axes=(None, 0)))
    diffs = np.asarray(value(length + h, keys) - value(length - h, keys)) / (2 * h)
    assert np.abs(grads).max() > 1e-3  # the length does move the objective
    np.testing.assert_allclose(grads, diffs, rtol=1e-5, atol=1e-9)


def test_gradient_lengthens_the_window_without_fresh_data():
    """No fresh human data after generation 0: every older batch is nearer the truth, so a longer
    window lowers the final KL (accumulate is best; Gerstgrasser et al. 2024). From window 2 the
    optimiser must lengthen it, and the exact re-evaluation (2000 fresh seeds each, paired) must
    improve by more than 4 standard errors of the paired difference."""
    start = _config("gaussian", 2, 0.0)
    objective = objectives.parse("final:kl", ("kl",))[0]
    result = optimize_gradient(start, objective, ("window",), steps=40, learning_rate=0.3, seeds=32, seed=0)
    assert result.config.policy.window >= 5
    before = evaluate(start, objective, seeds=2000, seed=1, stream=1)
    after = evaluate(result.config, objective, seeds=2000, seed=1, stream=1)
    difference = before.per_seed - after.per_seed
    assert difference.mean() > 4 * difference.std(ddof=1) / np.sqrt(difference.size)


def test_gradient_window_needs_the_window_retention():
    objective = objectives.parse("final:kl", ("kl",))[0]
    config = config_mod.from_dict({"scenario": {"generations": T, "samples": 40}, "policy": {"retention": "replace"}})
    with pytest.raises(ConfigError, match="set policy.retention = window"):
        optimize_gradient(config, objective, ("window",), steps=2)
