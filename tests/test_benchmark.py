"""``mixopt benchmark``: the smoke suite end to end (files exist, are non-empty, the PNGs open as
images, report.md embeds them), resumption, and bad input."""
import subprocess
import sys

import pandas as pd
import pytest

from mixopt.optimizers.space import BUDGET_MATCHED, ZERO_BUDGET
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
    assert [f.name for f in figures] == ["gaussian-T4_heatmap.png", "gaussian-T4_pareto.png",
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


def test_rerun_resumes_without_recomputing(smoke):
    out, _ = smoke
    parts = {p: p.stat().st_mtime_ns for p in (out / "parts").glob("*.csv")}
    again = _mixopt("benchmark", "--suite", "smoke", "--seeds", "32", "--trials", "3", "--out", "out", "--quiet",
                    cwd=out.parent)
    assert again.returncode == 0, again.stderr
    assert {p: p.stat().st_mtime_ns for p in (out / "parts").glob("*.csv")} == parts


@pytest.mark.parametrize("args,message", [(["--suite", "huge"], "--suite must be one of"),
                                          (["--seeds", "1"], "--seeds must be >= 2")])
def test_bad_input(tmp_path, args, message):
    out = _mixopt("benchmark", *args, "--out", "o", cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and message in out.stderr, out.stderr
