"""``mixopt calibrate``: recovery of known worlds with honest intervals, the affine link, the
"cannot fit" verdict, predictions, the calibrated config, and bad measurement files.

Recovery truth is a closed form, not a simulation: under ``replace`` with the ``mle`` Gaussian and
sampling temperature tau, E[variance_ratio_t] = ((M - 1) / M)^(t + 1) tau^(2 t) (DESIGN.md
section 2, each generation's fit shrinks the expected variance by (M - 1) / M and synthesis at tau
multiplies it by tau^2). Measurements are that curve plus N(0, se^2) noise; each repeat fits on its
own common seeds, so the 20 repeats are independent in both the measurement and the Monte-Carlo
noise. With honest 90% intervals the number covering the truth is Binomial(20, 0.9): P(< 16) = 0.043,
so ">= 16 of 20" is the issue's ">= 80%" with a 4% chance of a false alarm at these fixed seeds.
"""
import json
import math

import numpy as np
import pytest

from mixopt.calibration import measurements as measurements_mod
from mixopt.calibration.predict import measurements_text
from mixopt.calibration.report import calibrate
from mixopt.calibration.world import World
from mixopt.cli.main import main
from mixopt.errors import ConfigError

M, T, TAU, SE = 50, 5, 0.9, 0.02
REPEATS = 20


def closed_form(tau, num_samples=M, generations=T, power=2):
    t = np.arange(generations + 1)
    return ((num_samples - 1) / num_samples) ** (t + 1) * tau ** (power * t)


def gaussian_file(values, *, stderr=SE, fit=None, runs=None):
    runs = runs or [{"name": "replace", "policy": {"retention": "replace"},
                     "metric": [{"name": "variance_ratio", "generation": list(range(len(values))),
                                 "value": [float(v) for v in values], "stderr": [stderr] * len(values)}]}]
    return {"family": "gaussian", "fit": fit or {"temperature": [0.5, 1.5]},
            "scenario": {"generations": T, "samples": M}, "run": runs}


def _recoveries(power):
    """(fitted interval covers TAU, final predicted accumulate interval covers its truth, verdict) per repeat."""
    truth_file = measurements_mod.parse(gaussian_file(closed_form(TAU)))
    accumulate = World(truth_file, seeds=20000, seed=12345).curves({"temperature": TAU}, {"retention": "accumulate"})
    rng = np.random.default_rng(2024)
    rows = []
    for repeat in range(REPEATS):
        values = closed_form(TAU, power=power) + rng.normal(0, SE, T + 1)
        measured = measurements_mod.parse(gaussian_file(values))
        out = calibrate(measured, predict=[("accumulate", {"retention": "accumulate"})], seeds=400, seed=repeat,
                        steps=6, trials=8, progress=False)
        row = out["fitted"]["temperature"]
        last = [p for p in out["predictions"] if p["generation"] == T][0]
        rows.append((row["ci_low"] <= TAU <= row["ci_high"], last["pi_low"] <= accumulate["variance_ratio"].mean[T]
                     <= last["pi_high"], out["verdict"], row["ci_high"] - row["ci_low"]))
    return rows


def test_recovery_intervals_cover_the_truth_and_fail_on_a_wrong_curve():
    rows = _recoveries(power=2)
    covered = sum(r[0] for r in rows)
    assert covered >= 16, f"90% intervals covered tau = {TAU} in {covered} of {REPEATS} repeats"
    assert sum(r[1] for r in rows) >= 16, "the predicted accumulate curve's 90% interval missed its truth too often"
    assert sum(r[2] == "fits" for r in rows) >= 18, [r[2] for r in rows]
    assert max(r[3] for r in rows) < 0.2, "intervals this wide would cover anything"
    # The same test on measurements from a wrong formula (tau^t: the temperature applied to the
    # standard deviation once instead of the variance) must fail: the fits land near sqrt(tau).
    wrong = _recoveries(power=1)
    assert sum(r[0] for r in wrong) < 16


def test_affine_link_recovers_a_and_b():
    a_true, b_true = 2.0, 1.5
    scenario = {"generations": 4, "samples": 200, "truth": {"vocab": 100, "smoothing": 0.05}}
    policies = {"replace": {"retention": "replace"}, "accumulate": {"retention": "accumulate"}}
    skeleton = {"family": "categorical", "fit": {"zipf": [0.8, 1.6]}, "scenario": scenario,
                "run": [{"name": n, "policy": p, "metric": [{"name": "kl", "link": "affine", "generation": [0, 1, 2, 3, 4],
                                                             "value": [0.0] * 5, "stderr": [0.004] * 5}]}
                        for n, p in policies.items()]}
    world = World(measurements_mod.parse(skeleton), seeds=20000, seed=7)
    rng = np.random.default_rng(0)
    for run in skeleton["run"]:
        kl = world.curves({"zipf": 1.1}, run["policy"])["kl"].mean
        run["metric"][0]["value"] = (a_true + b_true * kl + rng.normal(0, 0.004, 5)).tolist()
    out = calibrate(measurements_mod.parse(skeleton), seeds=1000, seed=1, steps=6, trials=10, progress=False)
    link = out["link"]["kl"]
    assert link["link"] == "affine"
    # One fit, so not the interval's coverage (the recovery test holds that) but its scale: the truth
    # lies within 3 of the interval's standard deviations (half-width / 1.645): P(fail) = 0.003.
    estimates = {"a": (link["a"], a_true), "b": (link["b"], b_true), "zipf": (out["fitted"]["zipf"], 1.1)}
    for part, (row, truth) in estimates.items():
        sd = (row["ci_high"] - row["ci_low"]) / (2 * 1.645)
        assert abs(row["value"] - truth) < 3 * sd, (part, row)
        assert sd < 0.1 * truth, (part, row)
    # A wrong b (identity where the units differ) is refused: the same points with link identity
    identity = json.loads(json.dumps(skeleton))
    for run in identity["run"]:
        run["metric"][0]["link"] = "identity"
    wrong = calibrate(measurements_mod.parse(identity), seeds=400, seed=1, steps=4, trials=8, progress=False)
    assert wrong["verdict"].startswith("cannot fit")


def test_a_curve_the_family_cannot_produce_gets_the_verdict():
    # Under replace a Gaussian's variance falls at a fixed rate per generation (tau <= 1 here):
    # a curve that falls and then rises is not in the family.
    values = [1.0, 0.85, 0.75, 0.8, 0.95, 1.1]
    out = calibrate(measurements_mod.parse(gaussian_file(values, stderr=0.01, fit={"temperature": [0.5, 1.0]})),
                    seeds=200, steps=4, trials=8, progress=False)
    assert out["verdict"].startswith("cannot fit"), out["verdict"]
    assert "chi2" in out["verdict"]
    assert max(abs(r["residual_z"]) for r in out["fit"]) > 3


def test_a_fitted_batch_size_shares_one_program_and_gives_the_same_numbers():
    """M enters the Gaussian's exact program as a value (``montecarlo.samples_as_value``): two values of a
    fitted M run one compiled program, and each curve is the one a program compiled for that M gives,
    seed by seed (to rounding)."""
    from mixopt import montecarlo
    from mixopt.calibration import world as world_mod

    data = gaussian_file(closed_form(TAU), fit={"temperature": [0.5, 1.5], "samples": [20, 60]})
    data["scenario"].pop("samples")
    measured = measurements_mod.parse(data)
    world = World(measured, seeds=64, seed=3)
    before = len(world_mod._RUNNERS)
    curves = {m: world.curves({"temperature": TAU, "samples": float(m)}, {"retention": "accumulate"}) for m in (20, 41)}
    assert len(world_mod._RUNNERS) == before + 1
    for m, curve in curves.items():
        config = measured.config({"temperature": TAU, "samples": m}, {"retention": "accumulate", "temperature": TAU},
                                 seeds=64)
        assert config.scenario.samples == m and montecarlo.samples_as_value(config)
        direct = montecarlo.per_seed_metrics(config, world.keys)
        for name in ("variance_ratio", "kl"):
            np.testing.assert_allclose(curve[name].per_seed, direct[name], rtol=1e-12, atol=1e-14, err_msg=name)
    assert not np.allclose(curves[20]["variance_ratio"].mean, curves[41]["variance_ratio"].mean)


def test_integer_key_profile_and_calibrated_config(tmp_path, capsys):
    values = closed_form(TAU, num_samples=40) + np.random.default_rng(5).normal(0, 0.01, T + 1)
    data = gaussian_file(values, stderr=0.01, fit={"temperature": [0.5, 1.5], "samples": [35, 50]})
    data["scenario"].pop("samples")
    path = tmp_path / "measured.toml"
    path.write_text(measurements_text(data))
    out_config = tmp_path / "calibrated.toml"
    code = main(["calibrate", str(path), "--out", str(out_config),
                 "--figure", str(tmp_path / "fit.png"), "--seeds", "200", "--trials", "4", "--steps", "3",
                 "--format", "json", "--quiet"])
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    samples = payload["fitted"]["samples"]
    assert samples["method"] == "profile" and samples["ci_low"] <= 40 <= samples["ci_high"], samples
    assert payload["predictions"] == []  # predictions: test_recovery (each new M compiles: kept out of here)
    assert (tmp_path / "fit.png").stat().st_size > 1000
    from mixopt import config as config_mod
    from mixopt.serve.uncertain import parse_uncertain

    calibrated = config_mod.load(out_config)
    assert calibrated.scenario.samples == samples["value"]
    ranges = config_mod.read_file(out_config)["calibration"]["uncertain"]
    variants = parse_uncertain(ranges, calibrated)
    assert len(variants) == 3 ** len(ranges) and all(isinstance(v.scenario.samples, int) for _, v in variants)
    assert main(["simulate", str(out_config), "--seeds", "20", "--quiet"]) == 0


GOOD = gaussian_file(closed_form(TAU))


def _broken(change):
    data = json.loads(json.dumps(GOOD))
    change(data)
    return data


BAD_FILES = [
    (lambda d: d["run"][0]["metric"][0].update(generation=[1, 2, 3, 4, 5, 6]), "no generation 0"),
    (lambda d: d["run"][0]["metric"][0].update(stderr=[-0.01] + [SE] * 5), "stderr must be > 0"),
    (lambda d: d["run"][0]["metric"][0].update(name="perplexity"), "is not a metric of this family"),
    (lambda d: d["run"][0]["policy"].update(mixing="half"), "policy.mixing is not a policy key"),
    (lambda d: d.update(fit={"temperature": [1.5, 0.5]}), "low 1.5 > high 0.5"),
    (lambda d: d.update(fit={"zipf": [1.0, 2.0]}), "not a scenario key of family 'gaussian'"),
    (lambda d: d["run"][0]["metric"][0].update(link="log"), "link must be one of"),
    (lambda d: d["run"][0]["metric"][0].update(value=[1.0, 0.9]), "2 values for 6 generations"),
]


@pytest.mark.parametrize("change, message", BAD_FILES)
def test_bad_measurement_files_get_one_line_errors(tmp_path, capsys, change, message):
    path = tmp_path / "bad.toml"
    path.write_text(measurements_text(_broken(change)))
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        measurements_mod.load(path)
    assert main(["calibrate", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("mixopt: error:") and message in err


@pytest.mark.parametrize("flag, message", [("variance", "expected METRIC=S"), ("kl=0.1", "not a measured metric"),
                                           ("variance_ratio=-0.1", "must be a finite number >= 0")])
def test_bad_structural_flags_get_one_line_errors_before_jax(tmp_path, capsys, flag, message):
    path = tmp_path / "ok.toml"
    path.write_text(measurements_text(_broken(lambda d: None)))
    assert main(["calibrate", str(path), "--quiet", "--structural", flag]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("mixopt: error:") and message in err


def test_the_shipped_toml_writer_round_trips():
    import tomllib

    assert tomllib.loads(measurements_text(GOOD))["run"][0]["metric"][0]["value"] == pytest.approx(list(closed_form(TAU)))
    assert math.isclose(tomllib.loads(measurements_text(GOOD))["fit"]["temperature"][1], 1.5)


def test_the_shipped_example_files_parse():
    from pathlib import Path

    folder = Path(__file__).parent.parent / "experiments" / "calibration"
    files = sorted(folder.glob("*.toml")) + sorted((folder / "real").glob("*.toml"))
    measured = [f for f in files if "[[run]]" in f.read_text()]
    assert len(measured) >= 3, measured
    for path in measured:
        assert measurements_mod.load(path).runs
    for name in ("accumulate", "fresh10", "accumulate-subsample"):
        assert measurements_mod.load_policy(folder / f"{name}.toml")[0] == name


def test_recommend_uncertain_without_a_range_reads_the_calibrated_intervals(tmp_path):
    from mixopt.cli.main import _calibrated_ranges
    from mixopt.cli.parser import make_parser

    path = tmp_path / "calibrated.toml"
    path.write_text('[scenario]\nfamily = "gaussian"\n\n[calibration]\nuncertain = ["truth.temperature=0.8:0.95"]\n')
    args = make_parser().parse_args(["recommend", str(path), "--uncertain"])
    assert _calibrated_ranges(args) == ["truth.temperature=0.8:0.95"]
    args = make_parser().parse_args(["recommend", str(path), "--uncertain", "contamination=0:0.2"])
    assert _calibrated_ranges(args) == ["contamination=0:0.2"]
    plain = tmp_path / "plain.toml"
    plain.write_text('[scenario]\nfamily = "gaussian"\n')
    with pytest.raises(ConfigError, match="written by mixopt calibrate"):
        _calibrated_ranges(make_parser().parse_args(["recommend", str(plain), "--uncertain"]))


# A world the tests did not tune to: a Gaussian simulated sample by sample in numpy (not the closed
# form, not mixopt's sampler), synthesis at temperature TAU2, M2 samples a generation, replace; both
# variance_ratio and log_det_ratio measured on 3000 seeds with their standard errors. The two keys
# trade off (the mean decay is (M - 1)/M tau^2 a generation; log_det_ratio's (M - 1) enters through
# E log chi^2): a ridge, where an interval conditional on the best M is far too narrow.
TAU2, M2, T2, SEEDS2 = 0.93, 30, 6, 3000
METRICS2 = ("variance_ratio", "log_det_ratio")
COVERAGE_REPEATS = 8  # honest 90% intervals: Binomial(8, 0.9), P(< 6) = 0.038


def _numpy_world(rng):
    x = rng.normal(size=(SEEDS2, M2))
    variance, log_det = [], []
    for t in range(T2 + 1):
        mean, var = x.mean(1, keepdims=True), x.var(1, keepdims=True)  # the mle fit of generation t
        variance.append(var[:, 0])
        log_det.append(np.log(var[:, 0]))
        x = mean + TAU2 * np.sqrt(var) * rng.normal(size=(SEEDS2, M2))
    metric = lambda name, v: {"name": name, "generation": list(range(T2 + 1)),  # noqa: E731
                              "value": np.mean(v, 1).tolist(), "stderr": (np.std(v, 1, ddof=1) / np.sqrt(SEEDS2)).tolist()}
    return {"family": "gaussian", "fit": {"temperature": [0.7, 1.2], "samples": [15, 60]},
            "scenario": {"generations": T2},
            "run": [{"name": "replace", "policy": {"retention": "replace"},
                     "metric": [metric(name, np.array(v)) for name, v in
                                (("variance_ratio", variance), ("log_det_ratio", log_det)) if name in METRICS2]}]}


def test_intervals_cover_a_ridge_of_an_integer_and_a_continuous_key():
    """Both fitted keys' 90% intervals cover the truth in at least 6 of 8 independent repeats (each its
    own numpy draws and its own common seeds). Before the fix the issue measured intervals that
    excluded the truth by several widths: the integer key's profile crossing interpolated linearly
    in chi^2 over a coarse grid (and not walked on where its minimum sat at the grid's end), and the
    continuous key's interval held the integer key at its best value. Power: the same intervals at a
    quarter of their width cover fewer than 6 for each key on these fits (the issue's were 5x (the
    Zipf exponent) and 12x (M) narrower than the fixed ones on its categorical world). At half their
    width they still covered 6 and 7 of 8: the fixed intervals err on the wide side."""
    rng = np.random.default_rng(777)
    covered = {"temperature": 0, "samples": 0}
    narrow = {"temperature": 0, "samples": 0}
    for repeat in range(COVERAGE_REPEATS):
        out = calibrate(measurements_mod.parse(_numpy_world(rng)), seeds=200, seed=100 + repeat, steps=6, trials=8,
                        progress=False)
        for key, truth in (("temperature", TAU2), ("samples", M2)):
            row = out["fitted"][key]
            covered[key] += row["ci_low"] <= truth <= row["ci_high"]
            centre, half = (row["ci_low"] + row["ci_high"]) / 2, (row["ci_high"] - row["ci_low"]) / 8
            narrow[key] += centre - half <= truth <= centre + half
    assert covered["temperature"] >= 6 and covered["samples"] >= 6, covered
    assert narrow["temperature"] < 6 and narrow["samples"] < 6, narrow
