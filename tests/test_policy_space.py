"""Parametric schedules, curation and the provenance filter in the search space, and ask/tell batches.

Deterministic checks (the schedules are formulas); the batch check compares a vmapped evaluation
of several policies with one evaluation each on the same seeds (the same numbers up to float
rounding: 1e-9 relative in float64).
"""
import math

import jax
import jax.numpy as jnp
import numpy as np
import optuna
import pytest

from mixopt import config as config_mod
from mixopt import montecarlo, objectives
from mixopt.optimizers import space
from mixopt.errors import ConfigError
from mixopt.optimizers.gradient import optimize_gradient
from mixopt.optimizers.search import optimize_search
from mixopt.optimizers.space import parse_space
from mixopt.optimizers.space import with_policy
from mixopt.policies.schedules import schedule_values
from mixopt.optimizers.evaluators import Evaluator

KL = objectives.parse("final:kl", ("kl",))


def scenario(budget=50 + 200, T=8, M=50):
    return config_mod.from_dict({"scenario": {"generations": T, "samples": M, "human_budget": budget}})


def test_schedules_are_the_formulas_they_claim():
    config = scenario()
    assert schedule_values("human_fraction_linear", {"start": 0.8, "end": 0.1}, config) == pytest.approx(
        list(np.linspace(0.8, 0.1, 8)))
    assert schedule_values("human_fraction_decay", {"start": 0.5, "rate": 0.3}, config) == pytest.approx(
        [0.5 * math.exp(-0.3 * t) for t in range(8)], abs=1e-6)  # values are rounded to 6 decimals
    budget = schedule_values("human_fraction_budget", {"rate": 0.2}, config)
    assert np.all(np.diff(budget) < 0)  # rate > 0 front-loads
    assert sum(budget) * 50 == pytest.approx(200, abs=8 * 50e-6)  # spends the budget left after generation 0
    steep = schedule_values("human_fraction_budget", {"rate": 0.5}, config)
    assert steep[0] == 1.0 and sum(steep) * 50 < 200  # a share above a full batch is capped, not carried over
    even = schedule_values("human_fraction_budget", {"rate": 0.0}, config)
    assert even == pytest.approx([200 / 8 / 50] * 8)
    with pytest.raises(ConfigError, match="finite scenario.human_budget"):
        schedule_values("human_fraction_budget", {"rate": 0.0}, scenario(budget="inf"))


def test_one_fraction_key_at_a_time():
    with pytest.raises(ConfigError, match="takes one of"):
        parse_space("human_fraction_decay,human_fraction_schedule")


def test_search_over_a_budget_schedule_stays_within_the_budget(tmp_path):
    result = optimize_search(scenario(), KL, ("human_fraction_budget",), trials=10, storage=str(tmp_path / "s.log"),
                             study_name="budget", seeds=128, seed=0)
    rates = [t.params["human_fraction_budget.rate"] for t in result.study.trials]
    assert all(-1 <= r <= 3 for r in rates)
    spent = sum(round(v * 50) for v in result.config.policy.human_fraction)
    assert spent <= 200 + 8  # rounding of each generation's count: at most half a sample each way


@pytest.mark.parametrize("key", ["human_fraction_linear", "human_fraction_decay", "human_fraction_budget"])
def test_gradient_through_a_parametric_schedule(key):
    result = optimize_gradient(scenario(), KL[0], (key,), steps=30, learning_rate=0.1, seeds=64, seed=0)
    values = result.config.policy.human_fraction
    assert len(values) == 8 and all(0 <= v <= 1 for v in values)
    assert np.all(np.isfinite(result.losses))


def test_curation_and_provenance_filter_are_searched_conditionally(tmp_path):
    config = config_mod.from_dict({"scenario": {"generations": 3, "samples": 30, "contamination": 0.5,
                                                "detector_tpr": 0.9, "detector_fpr": 0.1},
                                   "policy": {"human_fraction": 0.3}, "run": {"sampler": "naive"}})
    result = optimize_search(config, KL, ("retention", "curation_fraction", "provenance_filter"), trials=16,
                             storage=str(tmp_path / "s.log"), study_name="cur", seeds=64, seed=0)
    for trial in result.study.trials:
        policy = trial.user_attrs["policy"]
        if policy["retention"] == "subsample":
            assert "curation_fraction" not in trial.params and policy["curation_fraction"] == 1.0
        else:
            assert 0.05 <= trial.params["curation_fraction"] <= 1.0
            assert trial.params["provenance_filter"] == policy["provenance_filter"]


def test_a_batch_evaluates_like_one_policy_at_a_time():
    config = scenario()
    configs = [with_policy(config, human_fraction=f) for f in (0.0, 0.2, [0.5, 0.4, 0.3, 0.2, 0.1, 0.0, 0.0, 0.0])]
    configs.append(with_policy(config, retention="accumulate"))  # another structure: its own program
    evaluator = Evaluator(KL, seeds=64, seed=0)
    batch = evaluator.many(configs)
    for config_i, (values, summary) in zip(configs, batch):
        one_values, one_summary = Evaluator(KL, seeds=64, seed=0)(config_i)
        assert values == pytest.approx(one_values, rel=1e-9)
        assert summary["metrics_final"] == pytest.approx(one_summary["metrics_final"], rel=1e-9)
    assert evaluator.evaluations == 64 * len(configs)


def test_ask_tell_batches_land_every_trial_once(tmp_path):
    result = optimize_search(scenario(), KL, ("human_fraction_schedule",), trials=13, storage=str(tmp_path / "s.log"),
                             study_name="batch", seeds=64, seed=0, batch=4)
    trials = result.study.trials
    assert len(trials) == 13 and sorted(t.number for t in trials) == list(range(13))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    # the baselines were enqueued and evaluated first: front-load (1.0), uniform (200 / (8 x 50) = 0.5),
    # back-load (nothing in generation 1), fixed 10%
    assert {t.params["human_fraction_01"] for t in trials[:4]} == {0.5, 1.0, 0.0, 0.1}
    assert sorted(trials[0].params) == list(trials[0].params)  # zero-padded: tools sort them in order
    again = optimize_search(scenario(), KL, ("human_fraction_schedule",), trials=13, storage=str(tmp_path / "s.log"),
                            study_name="batch", seeds=64, seed=0, batch=4)
    assert len(again.study.trials) == 13  # nothing more to do: resumed, not re-run


@pytest.mark.parametrize("name", [k for k, row in space.KEYS.items() if row.differentiable])
def test_every_gradient_row_writes_back_its_start(name):
    """A row of the key table: prepare -> init -> forward -> write_back returns the config's own
    value (rounded as a config stores it), so the gradient path starts where the config is."""
    policy = {"human_fraction": 0.3, "human_weight": 0.7, "curation_fraction": 0.8, "temperature": 1.3,
              "retention": "window", "window": 2}
    config = config_mod.from_dict({"scenario": {"generations": 4, "samples": 20, "human_budget": 60,
                                                "family": "categorical", "truth": {"vocab": 10}},
                                   "policy": policy, "run": {"sampler": "naive"}})
    row = space.KEYS[name]
    config = row.prepare(config)
    _, inputs = montecarlo.build(config, relaxed=True)
    inputs = inputs._replace(**{k: jnp.asarray(v, inputs.human_fraction.dtype)
                                for k, v in row.forward(jax.tree.map(jnp.asarray, row.init(config)), config).items()})
    back = row.write_back(inputs, config)
    assert back
    written = config_mod.from_dict({**config.to_dict(), "policy": {**space.policy_dict(config.policy), **back}})
    for key in back:
        if key == "window":
            assert written.policy.window == config.policy.window
        elif name != "human_fraction_budget":  # budget: an even spread of what is left, not the config's 0.3
            np.testing.assert_allclose(written.policy.schedule(key, 4), config.policy.schedule(key, 4), atol=1e-6)
    if name == "human_fraction_budget":  # (60 - 20) / 4 = 10 per generation: 0.5 of each batch
        np.testing.assert_allclose(back["human_fraction"], 0.5, atol=1e-6)
