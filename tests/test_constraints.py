"""Answers keep the user's pipeline (issue 26): fixed keys are constraints, one study per question, and
a search that reaches every spending plan.

Closed forms (truth N(0, 1), the mean fitted with the variance known, ``replace``, no contamination;
derived in tests/test_baselines.py): with n_t fresh human samples in batch t of M, lambda_t = n_t / M,
v_t = E[mu_t^2] = 1/M + (1 - lambda_t)^2 v_{t-1}, v_0 = 1/M, and E[kl_t] = v_t / 2.

- ``final:kl`` with at least M fresh samples after generation 0: all M in generation T gives
  v_T = 1/M, generation 0's value, and nothing does better (v_t >= 1/M).
- ``mean:kl`` (the mean over generations 1..T) with a budget B of whole samples over 1..T: not
  convex in the plan (bursts beat an even spread: a batch that is half human shrinks the inherited
  error by 1/4, two batches that are a quarter human by 0.56^2 = 0.32). ``exact_plan`` solves it
  exactly by a dynamic programme over (generation, samples spent) keeping, per state, the Pareto set
  of (objective so far, current variance): a plan dominated in both cannot be completed better.
"""
import dataclasses
import math

import numpy as np
import pytest

from mixopt import config as config_mod
from mixopt import montecarlo
from mixopt.errors import ConfigError
from mixopt.objectives import parse
from mixopt.optimizers.baselines import baseline_configs, budget_matched
from mixopt.serve.optimize import optimize
from mixopt.serve.recommend import recommend
from mixopt.store import default_study_name, open_study

T, M, B = 8, 10, 10  # horizon, batch, fresh samples after generation 0
KL = parse("final:kl", ("kl",))[0]


def _world(policy=None, *, budget=M + B, seeds=64, **scenario):
    return config_mod.from_dict({"scenario": {"generations": T, "samples": M, "human_budget": budget,
                                              "truth": {"fit": "mean"}, **scenario},
                                 "policy": policy or {}, "run": {"seeds": seeds}})


# ---------------------------------------------------------------------------------------------
# Study identity: every scenario key and every fixed policy key is part of the question.
# ---------------------------------------------------------------------------------------------
OTHER_SCENARIO = {"family": "regression", "generations": T + 1, "samples": M + 1, "human_budget": M + B + 5,
                  "truth": {"fit": "full"}, "contamination": 0.1, "detector_tpr": 0.9, "detector_fpr": 0.1,
                  "verifier_noise": 0.5, "human_per_generation": 3, "train_size": 15, "human_shelf_life": 2}
OTHER_POLICY = {"human_fraction": 0.2, "human_weight": 0.3, "human_source": "pool", "retention": "accumulate",
                "window": 2, "provenance_filter": True, "curation_fraction": 0.9, "temperature": 0.9, "age_weight": 0.3}


def test_every_scenario_and_policy_key_changes_the_study():
    assert set(OTHER_SCENARIO) == {f.name for f in dataclasses.fields(config_mod.Scenario)}  # none left out
    assert set(OTHER_POLICY) == {f.name for f in dataclasses.fields(config_mod.Policy)}
    space = ("human_allocation",)
    base = default_study_name(_world(), "final:kl", space)
    for key, value in OTHER_SCENARIO.items():
        assert default_study_name(_world(**{key: value}), "final:kl", space) != base, key
    from mixopt.optimizers.constraints import constraints

    defaults = config_mod.Policy()
    for key, value in OTHER_POLICY.items():
        unset, as_default, other = _world(), _world({key: getattr(defaults, key)}), _world({key: value})
        names = {default_study_name(c, "final:kl", space, constraints=constraints(c, space))
                 for c in (unset, as_default, other)}
        if key == "human_fraction":  # the space's allocation sets it: not a constraint, the same question
            assert len(names) == 1
        else:  # fixing a key, even at its default, is another question; so is another value
            assert len(names) == 3, key
    # the space and the method are part of it too
    assert default_study_name(_world(), "final:kl", ("human_fraction",)) != base
    assert default_study_name(_world(), "final:kl", space, "hybrid") != base


def test_a_study_refuses_a_question_with_other_constraints(tmp_path):
    import optuna

    storage = str(tmp_path / "s.log")
    open_study(_world(), [KL], storage=storage, study_name="q", sampler=optuna.samplers.RandomSampler(0),
               space=("human_allocation",), constraints={"retention": "replace"})
    for other in ({"constraints": {"retention": "window"}}, {"constraints": {}},
                  {"space": ("human_fraction",), "constraints": {"retention": "replace"}}):
        with pytest.raises(ConfigError, match="exists with a different"):
            open_study(_world(), [KL], storage=storage, study_name="q", sampler=optuna.samplers.RandomSampler(0),
                       **{"space": ("human_allocation",), **other})


# ---------------------------------------------------------------------------------------------
# Heuristics keep their constraint and spend what they claim.
# ---------------------------------------------------------------------------------------------
def _increments(config) -> np.ndarray:
    used = montecarlo.per_seed_metrics(config, montecarlo.seed_keys(0, 2))["human_used"]
    assert np.all(used == used[0])  # no contamination: the same in every seed
    return np.diff(used[0])


def _plans(num, size, left):
    """Each budget-matched rule's fresh samples per generation, written out independently."""
    uniform = [left // num + (t < left % num) for t in range(num)]
    front = [min(size, max(0, left - size * t)) for t in range(num)]
    fixed, spent = [], 0
    for _ in range(num):
        fixed.append(min(round(0.1 * size), left - spent))
        spent += fixed[-1]
    return {"uniform": uniform, "front-load": front, "back-load": front[::-1], "fixed-10%-fresh": fixed}


@pytest.mark.parametrize("retention", ["replace", "accumulate", "window", "subsample"])
def test_heuristics_keep_the_fixed_retention_and_spend_their_plan(retention):
    budget = M + 25  # 25 fresh samples: front-load fills two batches and part of a third
    config = _world({"retention": retention, "window": 2}, budget=budget)
    fixed = {"retention": retention, "window": 2}
    configs = baseline_configs(config, fixed)
    plans = _plans(T, M, 25)
    assert plans["front-load"] != plans["back-load"]  # the power check below: a swapped rule must fail
    matched = 0
    for name, heuristic in configs.items():
        assert heuristic.policy.retention == retention and heuristic.policy.window == 2, name
        rule = name.removesuffix(f"-{retention}")
        if not budget_matched(name):  # no fresh data after generation 0 (keep-10%-original reuses the pool)
            assert _increments(heuristic).sum() == 0, name
            continue
        matched += 1
        simulated = _increments(heuristic).tolist()
        assert simulated == plans[rule], (name, simulated)
        assert sum(simulated) <= budget - M
        if rule in ("front-load", "back-load"):
            swapped = plans["back-load" if rule == "front-load" else "front-load"]
            assert simulated != swapped
    assert matched == 4  # uniform, front-load, back-load, fixed 10%: each of this retention


def test_a_fixed_fraction_leaves_only_the_retention_free():
    config = _world({"human_fraction": 0.5})
    configs = baseline_configs(config, {"human_fraction": 0.5})
    assert set(configs) == {"as-set-replace", "as-set-accumulate"}
    assert all(c.policy.human_fraction == 0.5 for c in configs.values())


# ---------------------------------------------------------------------------------------------
# No answer breaks a fixed key; the same folder answers each question with its own study.
# ---------------------------------------------------------------------------------------------
SMALL = dict(trials=3, eval_seeds=200)


def test_three_retentions_in_one_folder_are_three_studies(tmp_path, capsys):
    storage = str(tmp_path / "mixopt-studies.log")
    reports = {}
    for retention in ("subsample", "replace", "window"):
        config = _world({"retention": retention}, seeds=16)
        reports[retention] = report = optimize(config, objective="final:kl", storage=storage, **SMALL)
        assert report["constraints"] == {"retention": retention}
        assert report["policy"]["retention"] == retention  # whatever the answer (searched or heuristic)
        assert all(row["policy"]["retention"] == retention for row in report["baselines"])
        assert report["simulator_evaluations"] > 0  # searched now, not read from another question's study
    assert len({r["study"] for r in reports.values()}) == 3
    # recommend reads back the study of its own constraints, and searches where none is stored
    window = recommend(_world({"retention": "window"}), "final:kl", storage=storage, use_atlas=False)
    assert window["source"] == "study" and window["study"] == reports["window"]["study"]
    assert window["policy"]["retention"] == "window"
    from mixopt.cli.main import main  # the command line says what it kept

    assert main(["recommend", "--generations", str(T), "--samples", str(M), "--human-budget", str(M + B),
                 "--fit", "mean", "--retention", "replace", "--storage", storage, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"from stored study {reports['replace']['study']}" in out
    assert "your constraints (kept by the answer and by every heuristic it is compared with): retention = replace" in out


def test_a_better_policy_outside_the_constraints_is_named_not_substituted(tmp_path):
    # accumulating every human sample beats any replace plan in this world (final:kl): the answer keeps
    # replace, and the note names what accumulating would gain
    config = _world({"retention": "replace"}, seeds=64)
    report = optimize(config, objective="final:kl", space="human_fraction_schedule", storage=str(tmp_path / "s.log"),
                      trials=6, eval_seeds=2000)
    assert report["policy"]["retention"] == "replace"
    assert report.get("best_baseline", "").endswith("-replace")
    outside = report["outside_constraints"]
    assert outside["breaks"] == {"retention": "accumulate"} and outside["margin"]["ci_low"] > 0
    assert "if your pipeline could change retention = accumulate" in outside["note"]


def test_recommend_keeps_a_fixed_retention_where_the_atlas_has_no_entry(tmp_path):
    # the shipped atlas answers this scenario unconstrained (front-load-accumulate) and fixed to replace
    # (its constrained grid: an entry of that constraint); fixed to subsample it has no entry, so
    # recommend searches within subsample
    config = config_mod.from_dict({"scenario": {"generations": 10, "samples": 100, "human_budget": 300},
                                   "policy": {"retention": "subsample"}, "run": {"seeds": 32}})
    free = recommend(dataclasses.replace(config, fixed=frozenset()), "final:kl", storage=str(tmp_path / "s.log"))
    assert free["source"] == "atlas"
    replace = recommend(with_retention(config, "replace"), "final:kl", storage=str(tmp_path / "s.log"))
    assert replace["source"] == "atlas" and replace["constraints"] == {"retention": "replace"}
    assert replace["policy"]["retention"] == "replace"
    answer = recommend(config, "final:kl", storage=str(tmp_path / "s.log"), time_budget=4, eval_seeds=300)
    assert answer["source"] in ("optimised", "heuristic") and "the atlas holds no entry" in answer["why_optimised"]
    assert answer["policy"]["retention"] == "subsample" and answer["constraints"] == {"retention": "subsample"}


def with_retention(config, retention):
    return config_mod.from_dict({**config.to_dict(), "policy": {"retention": retention}, "run": {"seeds": 32}})


# ---------------------------------------------------------------------------------------------
# Exact checks: the searches reach late and bursty plans.
# ---------------------------------------------------------------------------------------------
def exact_plan(num: int, size: int, budget: int, *, flow: float = math.inf,
               shrink=lambda f: (1 - f) ** 2) -> tuple[float, tuple]:
    """The least E[mean kl over 1..T] over whole-sample plans of ``budget`` (module docstring); under a
    ``flow`` F the samples spent by generation t are at most F t (the caps as constraints)."""
    states = {0: [(0.0, 1.0 / size, ())]}  # spent -> Pareto front of (sum of E[kl_t], v, plan)
    for t in range(1, num + 1):
        grown: dict = {}
        for spent, front in states.items():
            for total, v, plan in front:
                for n in range(int(min(size, budget - spent, flow * t - spent)) + 1):
                    v_next = 1.0 / size + shrink(n / size) * v
                    grown.setdefault(spent + n, []).append((total + v_next / 2, v_next, plan + (n,)))
        states = {}
        for spent, candidates in grown.items():
            front, lowest = [], math.inf
            for c in sorted(candidates):
                if c[1] < lowest - 1e-15:
                    front.append(c)
                    lowest = c[1]
            states[spent] = front
    total, _, plan = min(c for front in states.values() for c in front)
    return total / num, plan


def _plan_value(plan, size, *, shrink=lambda f: (1 - f) ** 2) -> float:
    v, total = 1.0 / size, 0.0
    for n in plan:
        v = 1.0 / size + shrink(n / size) * v
        total += v / 2
    return total / len(plan)


def _se(objective: dict) -> float:
    return (objective["ci_high"] - objective["ci_low"]) / (2 * 1.96)


def test_the_exact_mean_kl_plan_is_bursty_and_the_simulation_agrees():
    value, plan = exact_plan(T, M, B)
    assert plan == (0, 0, 5, 0, 0, 5, 0, 0) and value == pytest.approx(0.1378906, abs=1e-6)
    uniform = _plan_value([B // T + (t < B % T) for t in range(T)], M)
    assert uniform > 1.1 * value  # the exact optimum beats spreading the budget evenly by 13%
    # the simulation of that plan holds to it; a recursion without the square ((1 - lambda) v) does not
    config = _world({"human_fraction": [n / M for n in plan]}, seeds=20_000)
    values = np.asarray(parse("mean:kl", ("kl",))[0].value(montecarlo.simulate(config).per_seed))
    se = values.std(ddof=1) / np.sqrt(len(values))  # SE of the 20 000-seed mean
    assert abs(values.mean() - value) < 4 * se, (values.mean(), value, se)
    wrong = _plan_value(plan, M, shrink=lambda f: 1 - f)
    assert abs(values.mean() - wrong) > 4 * se, (values.mean(), wrong, se)


def test_gradient_reaches_the_exact_bursty_mean_kl_optimum(tmp_path):
    value, _ = exact_plan(T, M, B)
    report = optimize(_world({"retention": "replace"}, seeds=512), objective="mean:kl", method="gradient",
                      steps=300, eval_seeds=4000)
    found = report["objective"]
    # within 4 standard errors of its own 4000-seed evaluation (about 1.4% of the value)
    assert abs(found["mean"] - value) < 4 * _se(found), (found, value)
    # and beats the even spread (the exact optimum does, by 13%) beyond its paired CI
    uniform = next(row for row in report["baselines"] if row["name"] == "uniform-replace")
    assert report["answer"] == "optimised" and uniform["margin_ci_low"] > 0
    assert report["policy"]["retention"] == "replace"


def test_search_spends_the_whole_batch_in_the_last_generation_for_final_kl(tmp_path):
    budget = M + M  # one batch's worth of fresh samples after generation 0
    report = optimize(_world({"retention": "replace"}, budget=budget, seeds=128), objective="final:kl",
                      storage=str(tmp_path / "s.log"), trials=12, eval_seeds=4000)
    assert report["policy"]["human_fraction"][-1] == 1.0  # all M in generation T: a late plan
    found = report["objective"]
    # E[kl_T] = 1 / (2M), generation 0's value; SE of a 4000-seed mean of (1/2M) chi2_1 is sqrt(2)/(2M sqrt(4000))
    se = math.sqrt(2) / (2 * M * math.sqrt(4000))
    assert abs(found["mean"] - 1 / (2 * M)) < 4 * se, found


# ---------------------------------------------------------------------------------------------
# The golden ratio: a weight answer keeps the fixed fraction and says its weight.
# ---------------------------------------------------------------------------------------------
# The learner (issue 29), one direction trained to convergence, is least squares through the origin: its
# weight estimate from n fresh and m synthetic samples is the same weighted combination as the mean's
# (to O(1/n) in the Gram's fluctuation), so the same w* answers it.
LEARNER_1D = {"family": "learner", "truth": {"dim": 1, "noise": 1.0, "compute": "steps", "steps": 200.0, "lr": 0.5}}


@pytest.mark.parametrize("fraction, optimum, world, metric", [
    (0.5, (math.sqrt(5) - 1) / 2, {"truth": {"fit": "mean"}}, "mean_shift"),
    (0.1, None, {"truth": {"fit": "mean"}}, "mean_shift"),
    (0.5, (math.sqrt(5) - 1) / 2, LEARNER_1D, "test_error")])
def test_the_weight_answer_is_the_closed_form_and_carries_its_weight(tmp_path, fraction, optimum, world, metric):
    # stationary error (w^2/n + (1-w)^2/m) / (1 - (1-w)^2) with n fresh, m synthetic: minimised at
    # w* = (sqrt(k^2 + 4k) - k)/2, k = n/m (0.618 at n = m; 0.282 at k = 1/9)
    k = fraction / (1 - fraction)
    w_star = (math.sqrt(k * k + 4 * k) - k) / 2
    assert optimum is None or w_star == pytest.approx(optimum)
    config = config_mod.from_dict({"scenario": {"generations": 30, "samples": 20, **world},
                                   "policy": {"human_fraction": fraction, "retention": "replace"},
                                   "run": {"seeds": 4096}})
    report = optimize(config, objective=f"final:{metric}", space="human_weight", trials=40, eval_seeds=8192,
                      storage=str(tmp_path / "s.log"))
    assert report["constraints"] == {"human_fraction": fraction, "retention": "replace"}
    assert report["answer"] == "optimised" and report["policy"]["human_fraction"] == fraction
    assert abs(report["policy"]["human_weight"] - w_star) < 0.05, (report["policy"], w_star)
    # the count-share weight (plain pooling, w = fraction) is what it is compared with, and it is not the answer
    assert report["best_baseline"] == "as-set-replace" and abs(fraction - w_star) > 0.05


# ---------------------------------------------------------------------------------------------
# Every other way of asking keeps the constraints: target, uncertain, benchmark, the atlas build.
# ---------------------------------------------------------------------------------------------
def test_target_compares_only_heuristics_of_the_fixed_retention():
    from mixopt.serve.target import _evaluate

    from mixopt.optimizers.constraints import constraints

    config = _world({"retention": "window", "window": 2})
    rows = _evaluate(config, KL, M + B, seeds=16, seed=0, runners={}, fixed=constraints(config))
    assert {r["strategy"] for r in rows} == {f"{rule}-window" for rule in
                                             ("uniform", "front-load", "back-load", "fixed-10%-fresh")}


def test_uncertain_variants_and_benchmark_tasks_keep_the_constraints(tmp_path):
    from mixopt.serve.benchmark import _tasks, load_suite
    from mixopt.serve.uncertain import parse_uncertain

    config = _world({"retention": "replace"})
    variants = parse_uncertain(["contamination=0:0.2"], config)
    assert all(v.fixed == frozenset({"retention"}) for _, v in variants)
    suite = tmp_path / "suite.toml"
    suite.write_text('seeds = 16\ntrials = 2\nbudget_points = 2\n[[scenario]]\nname = "fixed"\n'
                     'objective = "final:kl"\ngenerations = 4\nsamples = 20\nhuman_budget = 40\n'
                     '[scenario.policy]\nretention = "replace"\n')
    tasks = _tasks(load_suite(str(suite)), 16)
    assert tasks and all(config.policy.retention == "replace" for _, _, config, _ in tasks)
    names = {strategy for _, strategy, _, _ in tasks}
    assert "front-load-replace" in names and not any("accumulate" in n for n in names)


def test_the_atlas_builds_entries_per_retention_constraint():
    from mixopt.serve.atlas import grid_configs

    points = grid_configs("gaussian", "default", 16, "free,window")
    free = [c for c, _ in points if not c.fixed]
    window = [c for c, _ in points if c.fixed == frozenset({"retention"})]
    assert len(free) == len(window) == len(points) // 2 and all(c.policy.retention == "window" for c in window)
    with pytest.raises(ConfigError, match="retentions must be"):
        grid_configs("gaussian", "default", 16, "sometimes")


def test_the_heuristics_outside_the_constraints_are_those_of_another_policy():
    # by policy, not by name: a fixed weight keeps every name but changes every policy
    from mixopt.optimizers.baselines import outside_constraints

    weighted = _world({"human_weight": 0.9})
    kept = baseline_configs(weighted, {"human_weight": 0.9})
    outside = outside_constraints(weighted, {"human_weight": 0.9}, kept)
    assert set(outside) == {n for n in kept if budget_matched(n)}  # same names, none of them kept's policy
    assert all(c.policy.human_weight is None for c in outside.values())
    replace = _world({"retention": "replace"})
    outside = outside_constraints(replace, {"retention": "replace"}, baseline_configs(replace, {"retention": "replace"}))
    assert set(outside) == {f"{rule}-accumulate" for rule in ("uniform", "front-load", "back-load", "fixed-10%-fresh")}
    assert outside_constraints(_world(), {}, baseline_configs(_world())) == {}
