"""``recommend --target``: the least human budget that meets a target, held to a closed form.

Truth N(0, 1), the mean fitted with the variance known, weights by count, n_t fresh human samples in
batch t of M (generation 0: M human), kl = mu^2 / 2, so E[kl_T] = v_T / 2 with v_0 = 1/M and
  replace:    v_t = 1/M + (1 - n_t/M)^2 v_{t-1}
  accumulate: v_t = (1 - n_t/((t + 1) M))^2 v_{t-1} + 1/((t + 1)^2 M)
(accumulate: the sum of the t + 1 batches gains (M - n_t) mu_{t-1} plus N(0, M) noise each generation).
The exact least budget is the least B at which the best budget-matched heuristic's E[kl_T] is at most
the target. The tool asks the 95% CI to meet it (ci_high <= target), so with |z| < 4 for its Monte-Carlo
means, its answer B^ satisfies E(B^) <= target + (4 - 1.96) se and E(B^ - 1) > target - (4 + 1.96) se,
i.e. it lies between the least budgets meeting those two shifted targets (se: the answer's standard
error). A wrong closed form (accumulate computed as replace) must put B^ outside its own interval.
"""
import json
import subprocess
import sys

import numpy as np
import pytest

from mixopt import config as config_mod
from mixopt.describe import effective_human
from mixopt.errors import ConfigError
from mixopt.optimizers.baselines import BUDGET_MATCHED, baseline_configs
from mixopt.serve.target import least_budget, parse_target

M, T, TARGET = 20, 6, 0.01


def _world(budget=None):
    scenario = {"family": "gaussian", "generations": T, "samples": M, "truth": {"fit": "mean"}}
    if budget is not None:
        scenario["human_budget"] = budget
    return config_mod.from_dict({"scenario": scenario})


def _expected_kl(counts, retention: str) -> float:
    v = 1.0 / M
    for t, n in enumerate(counts, start=1):
        if retention == "replace":
            v = 1.0 / M + (1.0 - n / M) ** 2 * v
        else:
            v = (1.0 - n / ((t + 1) * M)) ** 2 * v + 1.0 / ((t + 1) ** 2 * M)
    return v / 2


def _best_exact(budget: int, wrong: bool = False) -> float:
    values = []
    for name, config in baseline_configs(_world(budget)).items():
        if name in BUDGET_MATCHED:
            retention = "replace" if wrong else config.policy.retention
            values.append(_expected_kl(effective_human(config), retention))
    return min(values)


def _least(threshold: float, wrong: bool = False) -> float:
    """The least budget whose exact best score meets ``threshold`` (inf where none does)."""
    return next((b for b in range(M, M * (T + 1) + 1) if _best_exact(b, wrong) <= threshold), np.inf)


@pytest.fixture(scope="module")
def answer():
    return least_budget(_world(), parse_target(f"final:kl<={TARGET}"), seeds=4000, seed=3)


def test_least_budget_is_the_closed_form_one(answer):
    assert answer["met"] and answer["monotone"]
    budget, objective = answer["human_budget"], answer["objective"]
    se = (objective["ci_high"] - objective["mean"]) / 1.96
    assert objective["ci_high"] <= TARGET
    assert _least(TARGET + 2.04 * se) <= budget <= _least(TARGET - 5.96 * se), (budget, _least(TARGET))
    # the answer's own score against its closed form
    config = baseline_configs(_world(budget))[answer["strategy"]]
    exact = _expected_kl(effective_human(config), config.policy.retention)
    assert abs(objective["mean"] - exact) < 4 * se
    assert answer["human_per_generation"] == effective_human(config) and sum(answer["human_per_generation"]) == (
        budget - M)
    # power: with accumulate's variance computed as replace's, the tool's answer falls outside
    assert not _least(TARGET + 2.04 * se, wrong=True) <= budget <= _least(TARGET - 5.96 * se, wrong=True)


def test_every_budget_on_the_curve_was_measured_on_the_same_seeds(answer):
    budgets = sorted({row["human_budget"] for row in answer["curve"]})
    assert budgets[0] == M and budgets[-1] == M * (T + 1)
    # with nothing to spend, the heuristics of one retention are the same run on the same seeds
    at_zero = {row["strategy"]: row["mean"] for row in answer["curve"] if row["human_budget"] == M}
    assert at_zero["uniform-replace"] == at_zero["fixed-10%-fresh-replace"]
    assert at_zero["uniform-accumulate"] == at_zero["front-load-accumulate"] == at_zero["fixed-10%-fresh-accumulate"]
    assert at_zero["uniform-replace"] > at_zero["uniform-accumulate"]


def test_unreachable_target_and_bad_targets():
    out = least_budget(_world(), parse_target("final:kl<=1e-6"), seeds=200)
    assert not out["met"] and "every sample human" in out["reason"]
    for text, message in [("kl<0.1", "must look like"), ("final:kl>=0.1", "better lower"),
                          ("final:nope<=1", "unknown"), ("final:kl<=inf", "finite")]:
        with pytest.raises(ConfigError, match=message):
            parse_target(text, ("kl",))


def test_cli_target_json_and_one_line_error(tmp_path):
    args = [sys.executable, "-m", "mixopt", "recommend", "--family", "gaussian", "--generations", "3",
            "--samples", "20", "--fit", "mean", "--eval-seeds", "300", "--quiet"]
    proc = subprocess.run([*args, "--target", "final:kl<=0.02", "--format", "json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert payload["target"] == {"metric": "final:kl", "op": "<=", "value": 0.02}
    assert payload["human_budget"] == payload["scenario"]["human_budget"] and payload["source"] == "target"
    proc = subprocess.run([*args, "--target", "final:kl=0.02"], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "--target" in proc.stderr
