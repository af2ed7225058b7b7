"""The ``mixopt`` command, run as a user runs it (subprocesses)."""
import io
import json
import subprocess
import sys

import pandas as pd
import pytest

SMALL = ["--generations", "4", "--samples", "20", "--seeds", "8"]


def mixopt(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "mixopt", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


@pytest.fixture
def toml(tmp_path):
    def write(text, name="scenario.toml"):
        path = tmp_path / name
        path.write_text(text)
        return str(path)
    return write


BAD = [
    (["--samples", "-5"], "scenario.samples"),
    (["--samples", "0"], "scenario.samples"),
    (["--generations", "0"], "scenario.generations"),
    (["--seeds", "0"], "run.seeds"),
    (["--human-fraction", "1.5"], "policy.human_fraction"),
    (["--human-weight", "-0.1"], "policy.human_weight"),
    (["--human-fraction", "0.1,0.2"], "policy.human_fraction"),
    (["--human-fraction", "abc"], "--human-fraction"),
    (["--retention", "window", "--window", "0"], "policy.window"),
    (["--family", "poisson"], "scenario.family"),
    (["--retention", "forget"], "policy.retention"),
    (["--estimator", "bayes"], "scenario.truth.estimator"),
    (["--fit", "none"], "scenario.truth.fit"),
    (["--dim", "0"], "scenario.truth.dim"),
    (["--human-source", "web"], "policy.human_source"),
    (["--sampler", "fast"], "run.sampler"),
    (["--human-budget", "5"], "scenario.human_budget"),
    (["--format", "xml"], "--format"),
    (["--policy", "/nonexistent/policy.json"], "cannot read"),
    (["--no-such-flag"], "unrecognized"),
]


@pytest.mark.parametrize("args,key", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_and_exit_2(args, key):
    proc = mixopt("simulate", *SMALL, *args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mixopt: error: "), proc.stderr
    assert key in lines[0]
    assert proc.stdout == ""


@pytest.mark.parametrize("text,key", [
    ("[scenario\nsamples = 3", "malformed TOML"),
    ("[scenario]\nsamples = -3\n", "scenario.samples"),
    ("[scenario]\nsampels = 30\n", "scenario.sampels is not a known key"),
    ("[policy]\nhuman_fraction = [0.1, 0.2]\n[scenario]\ngenerations = 3\n", "one value per generation"),
    ("[scenario.truth]\ncolour = 1\n", "scenario.truth.colour"),
    ("[extra]\nx = 1\n", "unknown table [extra]"),
], ids=["malformed", "negative", "typo", "list-length", "truth-key", "table"])
def test_bad_config_file(toml, text, key):
    proc = mixopt("simulate", toml(text))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and key in proc.stderr and "Traceback" not in proc.stderr


def test_degenerate_simulation_names_metric_and_generation():
    proc = mixopt("simulate", "--samples", "2", "--generations", "400", "--seeds", "20")
    assert proc.returncode == 1
    # one error line; before it only progress lines (a compile that lasts over 2 s says so)
    *progress, error = proc.stderr.splitlines()
    assert error.startswith("mixopt: error: metric ") and "at generation" in error
    assert all(line.startswith("mixopt: simulating") for line in progress) and proc.stdout == ""
    quiet = mixopt("simulate", "--samples", "2", "--generations", "400", "--seeds", "20", "--quiet")
    assert quiet.stderr.count("\n") == 1 and quiet.stderr == error + "\n"


def test_table_csv_json_agree(tmp_path):
    table = mixopt("simulate", *SMALL)
    assert table.returncode == 0, table.stderr
    assert "variance_ratio" in table.stdout and "human_used" in table.stdout
    records = pd.read_csv(io.StringIO(mixopt("simulate", *SMALL, "--format", "csv").stdout))
    assert list(records.columns) == ["generation", "metric", "mean", "std", "seeds"]
    assert set(records["metric"]) == {"variance_ratio", "log_det_ratio", "mean_shift", "w2", "kl", "human_used"}
    assert records["generation"].max() == 4 and (records["seeds"] == 8).all()
    out = tmp_path / "out.json"
    assert mixopt("simulate", *SMALL, "--format", "json", "--out", str(out)).returncode == 0
    payload = json.loads(out.read_text())
    assert payload["scenario"]["samples"] == 20 and payload["policy"]["retention"] == "replace"
    assert pd.DataFrame(payload["trajectory"]).equals(records)  # same seed, same numbers


def test_config_file_flags_override_and_policy_file(toml, tmp_path):
    path = toml("[scenario]\ngenerations = 3\nsamples = 50\nhuman_budget = 80\n"
                "[policy]\nhuman_fraction = [0.2, 0.2, 0.2]\nretention = \"window\"\nwindow = 2\n"
                "[run]\nseeds = 5\n")
    payload = json.loads(mixopt("simulate", path, "--samples", "40", "--format", "json").stdout)
    assert payload["scenario"]["samples"] == 40 and payload["policy"]["window"] == 2
    used = [r["mean"] for r in payload["trajectory"] if r["metric"] == "human_used"]
    assert used == [40, 48, 56, 64]
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"policy": {"retention": "accumulate", "human_fraction": 0.0}}))
    payload = json.loads(mixopt("simulate", path, "--policy", str(policy), "--format", "json").stdout)
    assert payload["policy"]["retention"] == "accumulate"
    assert [r["mean"] for r in payload["trajectory"] if r["metric"] == "human_used"] == [50] * 4


def test_console_script_is_installed():
    import shutil

    exe = shutil.which("mixopt") or str(__import__("pathlib").Path(sys.executable).with_name("mixopt"))
    proc = subprocess.run([exe, "simulate", *SMALL, "--dim", "2"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "dim=2" in proc.stdout


def test_version_and_help_with_defaults():
    proc = mixopt("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("mixopt ")
    proc = mixopt("optimize", "--help")
    assert proc.returncode == 0 and "(default: 50)" in proc.stdout and "(default: None)" not in proc.stdout


@pytest.mark.parametrize("command", [["simulate"], ["optimize", "--trials", "1"], ["recommend", "--no-atlas"]])
def test_an_unwritable_out_fails_before_computing(tmp_path, command):
    import time

    start = time.perf_counter()
    proc = mixopt(*command, *SMALL, "--out", str(tmp_path / "missing" / "x.json"), cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "does not exist" in proc.stderr, proc.stderr
    assert time.perf_counter() - start < 2  # a process start and a parse: neither JAX nor pandas is imported
    assert not (tmp_path / "mixopt-studies.log").exists()


def test_a_policy_file_made_for_another_scenario_is_a_one_line_error(tmp_path):
    made = {"scenario": {"family": "gaussian", "generations": 4}, "policy": {"human_fraction": [0.1, 0.2, 0.3, 0.4]}}
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(made))
    other_family = mixopt("simulate", "--family", "categorical", "--vocab", "20", *SMALL, "--policy", str(path))
    assert other_family.returncode == 2 and other_family.stderr.count("\n") == 1
    assert "made for family 'gaussian', not 'categorical'" in other_family.stderr
    other_horizon = mixopt("simulate", "--generations", "6", "--samples", "20", "--seeds", "8", "--policy", str(path))
    assert other_horizon.returncode == 2 and "for T = 4 generations, this scenario has T = 6" in other_horizon.stderr
    same = mixopt("simulate", *SMALL, "--policy", str(path), "--format", "json")
    assert same.returncode == 0, same.stderr
    assert json.loads(same.stdout)["policy"]["human_fraction"] == [0.1, 0.2, 0.3, 0.4]


def test_progress_lines_off_a_terminal_and_none_with_quiet(tmp_path):
    args = ["optimize", *SMALL, "--trials", "3", "--eval-seeds", "100", "--format", "csv"]
    loud = mixopt(*args, cwd=tmp_path)  # stderr is a pipe here: plain lines, not a bar
    assert loud.returncode == 0, loud.stderr
    lines = [line for line in loud.stderr.splitlines() if line.startswith("mixopt: ")]
    assert any(line.startswith("mixopt: trials: done, 3 trials") for line in lines), lines
    assert any("evaluating" in line and "fresh seeds: done, 100 seeds" in line for line in lines), lines
    # gradient: one compiled scan, with a start, heartbeat and end line; --quiet: no progress at all
    grad = mixopt("optimize", *SMALL, "--method", "gradient", "--steps", "5", "--eval-seeds", "100", cwd=tmp_path)
    assert grad.returncode == 0 and "mixopt: gradient: 5 steps of 8 seeds" in grad.stderr, grad.stderr
    quiet = mixopt("optimize", *SMALL, "--method", "gradient", "--steps", "5", "--eval-seeds", "100", "--quiet",
                   cwd=tmp_path)
    assert quiet.returncode == 0 and not [l for l in quiet.stderr.splitlines() if l.startswith("mixopt: ")]
    table = pd.read_csv(io.StringIO(loud.stdout))
    assert "policy" in table and json.loads(table.loc[table["name"] == "replace", "policy"].iloc[0]) == {
        "human_fraction": 0.0, "human_source": "fresh", "retention": "replace"}


def _pandas_rendering(result, fmt):
    """What ``simulate`` printed when it formatted with pandas (the reference for the pandas-free one)."""
    trajectory = result.trajectory
    if fmt == "csv":
        return trajectory.to_csv(index=False)
    cells = trajectory.assign(cell=[f"{m:.4g} ± {s:.2g}" for m, s in zip(trajectory["mean"], trajectory["std"])])
    wide = cells.pivot(index="generation", columns="metric", values="cell")[list(dict.fromkeys(trajectory.metric))]
    wide.columns.name = None
    return wide


@pytest.mark.parametrize("generations", [3, 40])
def test_simulate_prints_without_pandas_what_pandas_printed(generations):
    """The table and CSV of ``simulate`` (written without pandas, for start-up) are pandas' text: wide and
    narrow columns, negative and tiny numbers, one- and two-digit generations, a thinned table."""
    import numpy as np

    from mixopt import config as config_mod
    from mixopt.cli.trajectory_format import format_result
    from mixopt.montecarlo import Result

    rng = np.random.default_rng(0)
    per_seed = {"kl": rng.lognormal(-6, 3, (5, generations + 1)), "log_det_ratio": rng.normal(-3, 50, (5, generations + 1)),
                "a_metric_with_a_long_name": rng.normal(0, 1e-9, (5, generations + 1)),
                "human_used": np.full((5, generations + 1), 20.0)}
    result = Result(config_mod.from_dict({"scenario": {"generations": generations}}), per_seed)
    assert format_result(result, "csv") == _pandas_rendering(result, "csv")
    assert json.loads(format_result(result, "json"))["trajectory"] == result.trajectory.to_dict(orient="records")
    lines = format_result(result, "table").splitlines()
    wide = _pandas_rendering(result, "table")
    shown = wide if generations < 26 else wide.iloc[sorted(set(range(0, len(wide), 2)) | {len(wide) - 1})]
    assert "\n".join(lines[1:1 + len(shown) + 2]) == shown.to_string()
    assert lines[-1].startswith("(every 2th of 41") if generations == 40 else len(lines) == len(wide) + 3
