"""The synthesis temperature as a policy key (``policy.temperature``, one value or one per generation).

Semantic: the model of generation t - 1 samples batch t at tau_t instead of the family's own
temperature. Closed form (Gaussian, mle, ``replace``, no human data, c = (M - 1)/M): the model
samples with variance tau_t^2 s_{t-1}^2, so E[variance_ratio_t] = c^(t+1) prod_{s<=t} tau_s^2.
Monte-Carlo check as in test_closed_forms.py: |z| < 4 over 20000 fixed seeds (z in units of the
standard error, sample std / sqrt(S)), and the same draws reject the constant-temperature formula
with the schedule's mean (|z| > 4).
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mixopt import config as config_mod
from mixopt import objectives, montecarlo
from mixopt.errors import ConfigError
from mixopt.optimizers.evaluate import evaluate
from mixopt.optimizers.gradient import optimize_gradient
from mixopt.optimizers.search import optimize_search
from mixopt.optimizers.space import with_policy

from _utils import run, z_score

SEEDS, M, T = 20000, 10, 6
TAU = np.array([1.2, 0.8, 1.1, 0.7, 1.0, 0.9])
C = (M - 1) / M


@pytest.mark.parametrize("family,extra", [("gaussian", {}), ("categorical", {"vocab": 50})])
def test_policy_temperature_equals_the_family_temperature(family, extra):
    """A constant policy temperature is the family's sampling temperature: the same numbers, seed by seed."""
    truth = run(200, family=family, generations=4, samples=M * 5, temperature=0.8, **extra)
    policy = run(200, family=family, generations=4, samples=M * 5, policy_temperature=0.8, **extra)
    for name in truth:
        np.testing.assert_allclose(policy[name], truth[name], rtol=1e-12, err_msg=name)


@pytest.mark.parametrize("sampler", ["exact", "naive"])
def test_temperature_schedule_closed_form(sampler):
    out = run(SEEDS, sampler=sampler, generations=T, samples=M, policy_temperature=list(TAU))
    gens = np.arange(T + 1)
    predicted = C ** (gens + 1) * np.concatenate([[1.0], np.cumprod(TAU**2)])
    z = z_score(out["variance_ratio"], predicted)
    assert np.all(np.abs(z) < 4), np.round(z, 2)
    constant = C ** (gens + 1) * TAU.mean() ** (2 * gens)  # wrong: the schedule's mean every generation
    assert np.max(np.abs(z_score(out["variance_ratio"], constant))) > 4


def test_temperature_gradient_matches_finite_difference():
    """d final KL / d tau_t through the relaxed exact simulation, path by path (float64, h = 1e-5)."""
    config = config_mod.from_dict({"scenario": {"generations": T, "samples": M},
                                   "policy": {"temperature": 1.0, "human_fraction": 0.2}})
    sim, inputs = montecarlo.build(config, relaxed=True)
    keys = montecarlo.seed_keys(0, 16)

    def objective(tau, key):
        return sim.rollout(key, inputs._replace(temperature=tau)).metrics["kl"][-1]

    tau = jnp.asarray(TAU)
    grads = np.asarray(jax.jit(jax.vmap(jax.grad(objective), in_axes=(None, 0)))(tau, keys))
    value = jax.jit(jax.vmap(objective, in_axes=(None, 0)))
    diffs = np.stack([np.asarray(value(tau + h, keys) - value(tau - h, keys)) / 2e-5
                      for h in np.eye(T) * 1e-5], axis=1)
    assert np.abs(grads).max() > 1e-3
    np.testing.assert_allclose(grads, diffs, rtol=1e-5, atol=1e-8)


def test_optimisers_raise_the_temperature_against_the_mle_shrinkage(tmp_path):
    """Pure synthetic data, mle fits: each generation shrinks the variance by c = 0.9 in the mean, so
    sampling hotter (tau > 1) keeps the final model nearer the truth; both methods find tau > 1.02
    and beat tau = 1 by more than the confidence intervals (fresh seeds, 4000 of them)."""
    config = config_mod.from_dict({"scenario": {"generations": T, "samples": M}, "policy": {"retention": "replace"}})
    objective = objectives.parse("final:kl", ("kl",))
    neutral = evaluate(config, objective[0], seeds=4000, seed=1)
    found = [optimize_gradient(config, objective[0], ("temperature",), steps=80, learning_rate=0.05,
                               seeds=64).config]
    found.append(optimize_search(config, objective, ("temperature",), trials=24, storage=str(tmp_path / "s.log"), study_name="t",
                                 seeds=256, seed=0).config)
    for best in found:
        assert best.policy.temperature > 1.02
        tuned = evaluate(best, objective[0], seeds=4000, seed=1)
        assert tuned.ci_high < neutral.ci_low, (best.policy.temperature, tuned, neutral)


def test_temperature_bad_input():
    base = {"scenario": {"generations": 3, "samples": 10}}
    with pytest.raises(ConfigError, match="temperature must be a number > 0"):
        config_mod.from_dict({**base, "policy": {"temperature": 0}})
    with pytest.raises(ConfigError, match="one value per generation"):
        config_mod.from_dict({**base, "policy": {"temperature": [1.0, 1.0]}})
    with pytest.raises(ConfigError, match="not 'regression'"):
        config_mod.from_dict({"scenario": {"family": "regression", "generations": 3, "samples": 10},
                              "policy": {"temperature": 0.9}})
    config = config_mod.from_dict(base)
    assert with_policy(config, temperature=[0.9, 1.0, 1.1]).policy.temperature == (0.9, 1.0, 1.1)
