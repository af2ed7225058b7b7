"""The baselines (DESIGN.md section 4, issue 11): what each spends, the paired margin against the best
budget-matched one, and the rule that no answer is worse than a heuristic.

Closed form used (truth N(0, 1), the mean fitted with the variance known, ``replace``, fresh human
fraction lambda_t = n_t / M, weights by count): mu_t = lambda_t h_t + (1 - lambda_t)(mu_{t-1} + e_t) with
h_t, e_t the means of n_t and M - n_t unit normals, so v_t = E[mu_t^2] = 1/M + (1 - lambda_t)^2 v_{t-1},
v_0 = 1/M, and E[kl_T] = v_T / 2 (KL(N(0,1) || N(mu, 1)) = mu^2 / 2).
"""
import dataclasses
import re

import numpy as np
import pytest

from mixopt import config as config_mod
from mixopt import montecarlo
from mixopt.objectives import parse
from mixopt.describe import describe
from mixopt.optimizers.evaluate import build_report, compare
from mixopt.optimizers.simplify import simplify
from mixopt.optimizers.baselines import BUDGET_MATCHED, ZERO_BUDGET, baseline_configs, spendable
from mixopt.optimizers.space import with_policy

M, T = 20, 6


def _world(budget, **scenario):
    return config_mod.from_dict({"scenario": {"family": "gaussian", "generations": T, "samples": M,
                                              "human_budget": budget, "truth": {"fit": "mean"}, **scenario},
                                 "run": {"seeds": 64}})


def _increments(config) -> np.ndarray:
    """Per-generation fresh human samples of the simulation itself (seed 0; they do not vary by seed)."""
    used = montecarlo.per_seed_metrics(config, montecarlo.seed_keys(0, 2))["human_used"]
    assert np.all(used == used[0])
    return np.diff(used[0])


def test_every_baseline_spends_what_it_claims_with_a_budget_that_runs_out():
    # budget 20 + 9: 9 fresh samples for generations 1..6; fixed 10% (2 a batch) runs out in generation 5
    configs = baseline_configs(_world(M + 9))
    assert set(configs) == set(ZERO_BUDGET) | set(BUDGET_MATCHED)
    expected = {"uniform-replace": [2, 2, 2, 1, 1, 1], "uniform-accumulate": [2, 2, 2, 1, 1, 1],
                "front-load-accumulate": [9, 0, 0, 0, 0, 0], "fixed-10%-fresh-replace": [2, 2, 2, 2, 1, 0],
                "fixed-10%-fresh-accumulate": [2, 2, 2, 2, 1, 0]}
    for name, counts in expected.items():
        np.testing.assert_array_equal(_increments(configs[name]), counts, err_msg=name)
    for name in ZERO_BUDGET:  # keep-10%-original reuses generation 0's samples: no fresh data either
        np.testing.assert_array_equal(_increments(configs[name]), np.zeros(T), err_msg=name)
    for name in ("uniform-replace", "uniform-accumulate", "front-load-accumulate"):
        assert _increments(configs[name]).sum() == spendable(configs[name].scenario) == 9


def test_budget_matched_spending_with_a_large_budget_contamination_and_no_budget():
    # a budget larger than one batch a generation: front-load spends whole batches, then the rest
    configs = baseline_configs(_world(M + 50))
    np.testing.assert_array_equal(_increments(configs["front-load-accumulate"]), [20, 20, 10, 0, 0, 0])
    np.testing.assert_array_equal(_increments(configs["uniform-accumulate"]), [9, 9, 8, 8, 8, 8])
    # contamination 0.25: only 3 of 4 slots bought as human are real; the spend is still the budget
    configs = baseline_configs(_world(M + 24, contamination=0.25))
    for name in ("uniform-replace", "front-load-accumulate"):
        assert _increments(configs[name]).sum() == 24, name
    np.testing.assert_array_equal(_increments(configs["front-load-accumulate"]), [15, 9, 0, 0, 0, 0])
    # no budget: every budget-matched baseline spends the stated default share (10% of each batch)
    configs = baseline_configs(_world("inf"))
    for name in BUDGET_MATCHED:
        assert _increments(configs[name]).sum() == 2 * T, name


def _v_final(counts) -> float:
    v = 1.0 / M
    for n in counts:
        v = 1.0 / M + (1.0 - n / M) ** 2 * v
    return v


def test_paired_margin_ci_covers_the_closed_form_difference():
    """uniform-replace against fixed-10%-fresh-replace with the budget running out: the true margin is
    (v_T(fixed) - v_T(uniform)) / 2. Over 40 independent blocks of 1000 seeds the paired 95% CI must
    cover it at least 32 times (Binomial(40, 0.95): P(< 32) = 2e-4), and the pooled margin must be
    within 4 standard errors. A wrong truth (fixed 10% never running out) is rejected on the same draws."""
    world = _world(M + 9)
    configs = baseline_configs(world)
    objective = parse("final:kl", None)[0]
    truth = (_v_final([2, 2, 2, 2, 1, 0]) - _v_final([2, 2, 2, 1, 1, 1])) / 2
    wrong = (_v_final([2] * T) - _v_final([2, 2, 2, 1, 1, 1])) / 2
    covered, covered_wrong, diffs, halves, unpaired = 0, 0, [], [], []
    for block in range(40):
        mine, rows = compare(configs["uniform-replace"], objective, {"fixed": configs["fixed-10%-fresh-replace"]},
                             seeds=1000, seed=100 + block)
        (row,) = rows
        covered += row["margin_ci_low"] <= truth <= row["margin_ci_high"]
        covered_wrong += row["margin_ci_low"] <= wrong <= row["margin_ci_high"]
        diffs.append(row["per_seed"] - mine.per_seed)
        halves.append((row["margin_ci_high"] - row["margin_ci_low"]) / 2)
        unpaired.append(1.96 * np.sqrt((row["per_seed"].var(ddof=1) + mine.per_seed.var(ddof=1)) / 1000))
    diffs = np.concatenate(diffs)
    # not too wide either: the half-width is the paired one, 1.96 SD(difference) / sqrt(1000) (its SD
    # over 40 blocks of 1000 seeds estimates it within a few %); the unpaired CI, the sum of the two
    # variances, is several times wider here (the seeds are common) and must fail the same bound
    paired = 1.96 * diffs.std(ddof=1) / np.sqrt(1000)
    assert abs(np.mean(halves) / paired - 1) < 0.1, (np.mean(halves), paired)
    assert np.mean(unpaired) / paired > 1.5, (np.mean(unpaired), paired)
    z = (diffs.mean() - truth) / (diffs.std(ddof=1) / np.sqrt(len(diffs)))
    assert covered >= 32 and abs(z) < 4, (covered, z)
    z_wrong = (diffs.mean() - wrong) / (diffs.std(ddof=1) / np.sqrt(len(diffs)))
    assert abs(z_wrong) > 4 and covered_wrong < 32, (covered_wrong, z_wrong)


@pytest.fixture(scope="module")
def budget_world():
    return config_mod.from_dict({"scenario": {"family": "gaussian", "generations": 10, "samples": 100,
                                              "human_budget": 300}, "run": {"seeds": 64}})


def test_a_policy_worse_than_a_heuristic_gets_the_heuristic_back(budget_world):
    objective = parse("final:kl", None)[0]
    worse = with_policy(budget_world, retention="replace", human_fraction=0.1)  # spends its budget badly
    report = build_report(worse, objective, eval_seeds=1000, seed=0)
    assert report["answer"] == "heuristic" and report["best_baseline"] == "front-load-accumulate"
    heuristic = baseline_configs(budget_world)["front-load-accumulate"]
    assert report["policy"]["human_fraction"] == list(heuristic.policy.human_fraction)
    row = next(r for r in report["baselines"] if r["name"] == "front-load-accumulate")
    assert report["objective"]["mean"] == row["mean"] and report["human_used"] == row["human_used"]
    assert report["optimised"]["objective"]["mean"] > row["mean"]  # the losing policy is kept, with its score
    # one meaning of margin: how much better the answer is than the named comparison, here the losing policy
    assert report["margin_vs"] == "optimised" and report["margin"]["ci_low"] > 0
    assert row["margin"] == 0.0  # every row's margin is the answer's against it: the answer's own row is 0
    assert all(type(v) is float for v in report["margin"].values() if not isinstance(v, dict))
    kept = build_report(worse, objective, eval_seeds=1000, seed=0, fallback=False)
    assert kept["answer"] == "optimised" and kept["policy"]["human_fraction"] == 0.1


def test_a_policy_better_than_every_heuristic_stays_the_answer(budget_world):
    # all-human from generation 1 to 2 and the human samples given 99% of the loss: close to fitting the
    # 300 human samples alone (E kl ~ 2/(2 * 300)), which beats front-loading at count weights
    heuristic = baseline_configs(budget_world)["front-load-accumulate"]
    better = dataclasses.replace(heuristic, policy=dataclasses.replace(heuristic.policy, human_weight=0.99))
    report = build_report(better, parse("final:kl", None)[0], eval_seeds=1000, seed=0)
    assert report["answer"] == "optimised" and report["best_baseline"] == "front-load-accumulate"
    assert report["margin"]["ci_low"] > 0 and 0 < report["margin"]["relative"]["ci_low"]
    assert report["policy"]["human_weight"] == 0.99


def _counts_in_words(text: str, num: int) -> np.ndarray:
    """The per-generation fresh human counts that ``describe``'s words state."""
    counts = np.full(num, -1)
    for first, last, words in re.findall(r"(?:generations? (\d+)(?:-(\d+))?|every generation): ([^;]*)", text):
        span = slice(0, num) if not first else slice(int(first) - 1, int(last or first))
        number = re.match(r"(?:fresh human data only \()?(\d+)", words)
        counts[span] = 0 if words.startswith("no ") else int(number.group(1))
    assert np.all(counts >= 0), text
    return counts


def test_the_words_state_the_counts_the_simulation_spends():
    worlds = [_world(M + 9), _world(M + 50), _world("inf")]
    configs = [c for w in worlds for c in baseline_configs(w).values() if c.policy.human_source == "fresh"]
    configs.append(with_policy(_world(M + 30), retention="accumulate", human_fraction=[0.9, 0.5, 0.5, 0.3, 0.3, 0.1]))
    for config in configs:
        text = describe(config)
        np.testing.assert_array_equal(_counts_in_words(text, T), _increments(config), err_msg=text)
    assert _counts_in_words("generations 1-2: fresh human data only (20 a generation); generations 3-6: no "
                            "fresh human data", T).tolist() == [20, 20, 0, 0, 0, 0]  # the parser itself


def test_noisy_shares_are_simplified_where_no_worse_and_kept_where_simpler_is_worse(budget_world):
    objective = parse("final:kl", None)[0]
    noisy = with_policy(budget_world, retention="accumulate",
                        human_fraction=[0.99, 0.98, 0.03, 0.004, 0.02, 0.01, 0.0, 0.03, 0.01, 0.0])
    simpler, exact = simplify(noisy)
    assert not exact and simpler.policy.human_fraction == (1.0, 1.0) + (0.0,) * 8
    report = build_report(noisy, objective, eval_seeds=1000, seed=0, fallback=False)
    assert report["simplified"] == "checked" and report["policy"]["human_fraction"] == [1.0, 1.0] + [0.0] * 8
    assert report["description"].startswith("generations 1-2: fresh human data only (100 a generation)")
    # a schedule the budget cuts short is restated as what happens, with the same numbers
    capped = with_policy(budget_world, retention="accumulate", human_fraction=0.7)
    simpler, exact = simplify(capped)
    assert exact and simpler.policy.human_fraction == (0.7, 0.7, 0.6) + (0.0,) * 7
    restated = build_report(capped, objective, eval_seeds=300, seed=0, fallback=False)
    as_given = build_report(capped, objective, eval_seeds=300, seed=0, fallback=False, simplify_policy=False)
    assert restated["simplified"] == "exact" and restated["policy"]["human_fraction"] == [0.7, 0.7, 0.6] + [0.0] * 7
    assert restated["objective"]["mean"] == as_given["objective"]["mean"]  # the same simulation, seed for seed
    # under replace, 4% fresh a generation is worth keeping: snapped to 0 it is rejected on the paired seeds
    small = with_policy(budget_world, retention="replace", human_fraction=0.04)
    assert simplify(small)[0].policy.human_fraction == 0.0
    report = build_report(small, objective, eval_seeds=1000, seed=0, fallback=False)
    assert report["simplified"] == "no" and report["policy"]["human_fraction"] == 0.04
