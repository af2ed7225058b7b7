"""``mixopt benchmark``: the smoke suite end to end (files exist, are non-empty, the PNGs open as
images, report.md embeds them), resumption, and bad input."""
import subprocess
import sys

import pandas as pd
import pytest

from mixopt.optimizers.baselines import BUDGET_MATCHED, ZERO_BUDGET
from mixopt.serve import benchmark
from mixopt.serve import report as report_mod


def _mixopt(*args, cwd):
    return subprocess.run([sys.executable, "-m", "mixopt", *args], capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    first = _mixopt("benchmark", "--suite", "smoke", "--seeds", "32", "--trials", "3", "--out", "out", "--quiet",
                    cwd=root)
    return root / "out", first


def test_outputs_exist_and_figures_open(smoke):
    out, first = smoke
    assert first.returncode == 0, first.stderr
    import matplotlib.pyplot as plt

    for name in ("results.csv", "summary.csv", "summary.md", "report.md"):
        assert (out / name).stat().st_size > 0, name
    figures = sorted(out.glob("*.png"))
    assert [f.name for f in figures] == ["gaussian-T4_budget.png", "gaussian-T4_heatmap.png", "gaussian-T4_pareto.png",
                                         "gaussian-T4_trajectory.png"]
    report = (out / "report.md").read_text()
    for figure in figures:
        image = plt.imread(figure)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
        assert f"({figure.name})" in report
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["strategy"]) == set(ZERO_BUDGET) | set(BUDGET_MATCHED) | {"optimised"}
    results = pd.read_csv(out / "results.csv")
    assert {"gaussian-T4"} == set(results["scenario"])
    grid = results[results["strategy"].str.startswith("grid:")]["strategy"].unique()
    assert len(grid) == len(report_mod.HEATMAP_RETENTIONS) * len(benchmark.SUITES["smoke"]["heatmap"])
    # the summary's numbers are the results' final generation
    kl = results[(results["strategy"] == "replace") & (results["metric"] == "kl")]
    assert summary.set_index("strategy").loc["replace", "final"] == pytest.approx(kl["mean"].iloc[-1])
    assert first.stdout.startswith("| scenario | strategy |")
    # the budget-quality points: every budget-matched heuristic at M, M (T + 1) and between
    curve = pd.read_csv(out / "budget_curve.csv")
    assert sorted(curve["human_budget"].unique()) == [30, 90, 150]
    assert set(curve["strategy"]) == set(BUDGET_MATCHED)
    # the optimised strategy's paired margin against the best budget-matched heuristic, and its line
    optimised = summary.set_index("strategy").loc["optimised"]
    best = summary[summary["spends"] == "budget"].sort_values("final").iloc[0]
    assert optimised["vs"] == best["strategy"] and optimised["margin_ci_low"] <= optimised["margin"]
    assert f"optimised is " in report and f"the best simple heuristic, {best['strategy']}" in report
    assert "Scenario: gaussian, T = 4 generations of M = 30 samples, human budget 60" in report


def test_rerun_resumes_without_recomputing(smoke):
    out, _ = smoke
    parts = {p: p.stat().st_mtime_ns for p in (out / "parts").glob("*.csv")}
    again = _mixopt("benchmark", "--suite", "smoke", "--seeds", "32", "--trials", "3", "--out", "out", "--quiet",
                    cwd=out.parent)
    assert again.returncode == 0, again.stderr
    assert {p: p.stat().st_mtime_ns for p in (out / "parts").glob("*.csv")} == parts


SUITE = """
seeds = 200
heatmap = []
budget_points = 0
[[scenario]]
name = "mine"
objective = "final:kl"
strategies = ["front-load-accumulate", "uniform-accumulate", "replace", "ours.json"]
family = "gaussian"
generations = 6
samples = 40
human_budget = 120
"""


def test_a_users_suite_file_with_a_policy_file(tmp_path):
    (tmp_path / "suite.toml").write_text(SUITE)
    # the policy file as `mixopt optimize --format json` writes it (a "policy" key among others)
    (tmp_path / "ours.json").write_text('{"policy": {"human_fraction": 0.5, "retention": "accumulate"}, "x": 1}')
    proc = _mixopt("benchmark", "--suite", "suite.toml", "--out", "o", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = pd.read_csv(tmp_path / "o" / "summary.csv").set_index("strategy")
    assert list(summary.index) == ["front-load-accumulate", "uniform-accumulate", "replace", "ours"]
    assert summary.loc["ours", "spends"] == "policy" and summary.loc["ours", "vs"] == "front-load-accumulate"
    assert summary.loc["ours", "human_used"] == 120  # 40 + 20 a generation until the budget is spent
    assert summary.loc["replace", "margin"] < 0  # no fresh data: worse than front-loading, paired
    report = (tmp_path / "o" / "report.md").read_text()
    assert "Policy `ours`: generations 1-4: 20 fresh human samples a generation (50%)" in report


@pytest.mark.parametrize("text,message", [
    (SUITE.replace("seeds = 200", "seed = 200"), "unknown key 'seed'"),
    (SUITE.replace('"ours.json"', '"nonsense"'), "strategy 'nonsense' is neither a baseline"),
    (SUITE.replace("samples = 40", "samples = -4"), "scenario 'mine': scenario.samples"),
    (SUITE.replace("samples = 40", "sample = 40"), "scenario 'mine': scenario.sample is not a known key"),
    (SUITE.replace('name = "mine"', ''), "[[scenario]] number 1 needs a name"),
    (SUITE.replace('objective = "final:kl"', 'objective = "final:nope"'), "objective metric 'nope'"),
    (SUITE.replace('objective = "final:kl"', ''), "needs an objective"),
    ("seeds = [", "malformed TOML"),
])
def test_a_suite_file_with_a_mistake_is_a_one_line_error(tmp_path, text, message):
    (tmp_path / "suite.toml").write_text(text)
    (tmp_path / "ours.json").write_text('{"human_fraction": 0.5, "retention": "accumulate"}')
    out = _mixopt("benchmark", "--suite", "suite.toml", "--out", "o", cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and message in out.stderr, out.stderr
    assert not (tmp_path / "o").exists()  # checked before anything ran


@pytest.mark.parametrize("args,message", [(["--suite", "huge"], "--suite must be one of"),
                                          (["--seeds", "1"], "--seeds must be >= 2")])
def test_bad_input(tmp_path, args, message):
    out = _mixopt("benchmark", *args, "--out", "o", cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and message in out.stderr, out.stderr


def test_summary_ranks_by_the_objective_not_the_last_generation():
    # mean:kl over generations: back-load-replace ends lowest (its human data come last) but is worse on
    # average; the best heuristic, each row's value and the margins follow the objective (the per-seed
    # values), not the last generation's kl (which would name back-load-replace: the power check)
    import numpy as np

    rng = np.random.default_rng(0)
    per_seed = {("s", "uniform-replace"): 0.02 + 0.001 * rng.standard_normal(64),
                ("s", "back-load-replace"): 0.03 + 0.001 * rng.standard_normal(64)}
    per_seed[("s", "optimised")] = per_seed[("s", "uniform-replace")] - 0.002
    last = {"uniform-replace": 0.02, "back-load-replace": 0.005, "optimised": 0.018}
    rows = [{"scenario": "s", "strategy": name, "generation": g, "metric": "kl", "mean": value if g == 2 else 0.5,
             "std": 0.01, "seeds": 64, "ci_low": value - 0.001, "ci_high": value + 0.001, "objective": "mean:kl",
             "human_used": 60, "policy": "{}", "error": ""} for name, value in last.items() for g in range(3)]
    summary = report_mod.summary_table(pd.DataFrame(rows), per_seed).set_index("strategy")
    assert summary.loc["optimised", "vs"] == "uniform-replace"
    assert summary.loc["back-load-replace", "final"] == pytest.approx(per_seed[("s", "back-load-replace")].mean())
    assert summary.loc["optimised", "margin"] == pytest.approx(0.002) and summary.loc["optimised", "margin_ci_low"] > 0
