"""The structural error of forecasts (``mixopt.calibration.discrepancy``, issue 27).

A world the tests did not tune to and the Gaussian family cannot represent: a Gaussian whose model is
fitted by a shrunk estimator, variance = SS / (n + k) with k = 8 (not the mle's SS / n: a functional
approximation error whose bias fades as the training set grows), simulated seed by seed in numpy.
The family can only absorb replace's shrinkage in a small batch size (M' about 4 against the true
30), which transfers wrongly to other retention rules: fitted to replace and accumulate (verdict
"cannot fit"), its forecast of accumulate-subsample misses by up to 0.2 while its band, conditional
on the family, is narrower (the issue's failure on language-model curves, in a world of its own).

Each of 8 repeats draws its own measurements (3000 numpy seeds, their standard errors) and fits on
its own common seeds (4000); the truth of the forecast is the numpy world's accumulate-subsample
curve on 40000 seeds (standard error under 0.001, a twentieth of any band). Measured (float64, these
seeds): the bands with the structural term hold 41 of the 48 points at generations 1-6 (85%), the
bands without it 33 (69%); the final generation 8 of 8 with it. The threshold is the nominal 90% less
an allowance, 80% (38.4 points), as the recovery tests' 16 of 20: points of one repeat share its fit,
so the pooled share varies more than a binomial's (its SE over 8 repeats is about 0.06): the term
passes by 2.6 points, the band as it was (the deliberately wrong formula) fails by 5.4. The median
half-width is 0.126 with the term against 0.096 without: a fifth wider, not wide enough for anything. Tried first
and dropped: the same world at k = 4, where the Monte-Carlo band of a fit with M' = 5 covered half
the points without the term (no power), and a structural variance growing as t (60% of the points against the constant's 67% at k = 4, float32).
"""
import numpy as np
import pytest

from mixopt.calibration import measurements as measurements_mod
from mixopt.calibration.discrepancy import Discrepancy, moment_scale
from mixopt.calibration.fit import Z
from mixopt.calibration.report import calibrate
from mixopt.cli.calibration_format import format_calibration
from mixopt.errors import ConfigError

M, T, K, SEEDS, REPEATS = 30, 6, 8, 3000, 8


def shrunk_world(rng, retention: str, seeds: int = SEEDS) -> np.ndarray:
    """(seeds, T + 1) fitted variances (the truth's is 1) under ``retention``, from generation 0's M human samples."""
    batches = [rng.standard_normal((seeds, M))]
    out = []
    for t in range(T + 1):
        union = np.concatenate(batches, 1)
        if retention == "replace":
            x = batches[-1]
        elif retention == "accumulate" or t == 0:
            x = union
        else:  # subsample: M of everything so far, without replacement
            x = np.take_along_axis(union, np.argsort(rng.random(union.shape), 1)[:, :M], 1)
        mean = x.mean(1, keepdims=True)
        var = ((x - mean) ** 2).sum(1, keepdims=True) / (x.shape[1] + K)
        out.append(var[:, 0])
        batches.append(mean + np.sqrt(var) * rng.standard_normal((seeds, M)))
    return np.stack(out, 1)


def _measurements(rng) -> dict:
    def run(retention):
        v = shrunk_world(rng, retention)
        return {"name": retention, "policy": {"retention": retention},
                "metric": [{"name": "variance_ratio", "generation": list(range(T + 1)), "value": v.mean(0).tolist(),
                            "stderr": (v.std(0, ddof=1) / np.sqrt(SEEDS)).tolist()}]}

    return {"family": "gaussian", "fit": {"temperature": [0.7, 1.2], "samples": [2, 100]},
            "scenario": {"generations": T}, "run": [run("replace"), run("accumulate")]}


def test_structural_term_widens_forecasts_of_an_unmeasured_rule_toward_their_coverage():
    truth = shrunk_world(np.random.default_rng(1), "subsample", seeds=40000).mean(0)
    rng = np.random.default_rng(777)
    inside, inside_without, final, widths = 0, 0, 0, []
    for repeat in range(REPEATS):
        out = calibrate(measurements_mod.parse(_measurements(rng)), predict=[("subsample", {"retention": "subsample"})],
                        seeds=4000, seed=100 + repeat, steps=6, trials=8, progress=False)
        assert out["discrepancy"]["folds"] == 2 and out["discrepancy"]["scale"]["variance_ratio"] > 0, out["discrepancy"]
        rows = out["predictions"]
        assert rows[0]["structural_sd"] == 0.0  # generation 0: every policy's, seen by the fit
        for row in rows[1:]:
            error = abs(row["mean"] - truth[row["generation"]])
            half = (row["pi_high"] - row["pi_low"]) / 2
            without = np.sqrt(max(half ** 2 - (Z * row["structural_sd"]) ** 2, 0.0))
            inside += error <= half
            inside_without += error <= without
            widths.append(half)
        final += rows[-1]["pi_low"] <= truth[T] <= rows[-1]["pi_high"]
    points = REPEATS * T
    assert inside >= 0.8 * points, f"{inside} of {points} points inside the bands with the structural term"
    assert inside_without < 0.8 * points, f"{inside_without} of {points} inside without it: the test has no power"
    assert final >= REPEATS - 2, final
    assert np.median(widths) < 0.15, "bands this wide (the curve falls from 0.76 to 0.51) would cover anything"
    assert "structural error included" in format_calibration(out, "table")


def test_one_measured_run_leaves_the_structural_error_unestimated_and_says_so():
    data = _measurements(np.random.default_rng(5))
    data["run"] = data["run"][:1]
    out = calibrate(measurements_mod.parse(data), predict=[("subsample", {"retention": "subsample"})], seeds=400,
                    steps=2, trials=4, progress=False)
    assert out["discrepancy"]["scale"] is None and out["discrepancy"]["folds"] == 0
    assert all(row["structural_sd"] == 0.0 for row in out["predictions"])
    assert "conditional on the family" in format_calibration(out, "table")
    # s known from other systems (--structural): the same fit, its bands widened in quadrature at t >= 1 only
    given = calibrate(measurements_mod.parse(data), predict=[("subsample", {"retention": "subsample"})], seeds=400,
                      steps=2, trials=4, progress=False, structural={"variance_ratio": 0.05})
    assert given["discrepancy"]["given"] == {"variance_ratio": 0.05} and given["discrepancy"]["estimated"] is None
    for row, plain in zip(given["predictions"], out["predictions"]):
        assert row["mean"] == plain["mean"]
        half, plain_half = (row["pi_high"] - row["pi_low"]) / 2, (plain["pi_high"] - plain["pi_low"]) / 2
        s = 0.05 if row["generation"] > 0 else 0.0
        assert row["structural_sd"] == s
        assert np.isclose(half ** 2, plain_half ** 2 + (Z * s) ** 2, rtol=1e-9), (half, plain_half)
    assert "given: variance_ratio 0.05" in format_calibration(given, "table")
    with pytest.raises(ConfigError, match="not a measured metric"):
        calibrate(measurements_mod.parse(data), seeds=400, steps=0, trials=1, progress=False, structural={"kl": 0.1})
    with pytest.raises(ConfigError, match="must be a finite number >= 0"):
        calibrate(measurements_mod.parse(data), seeds=400, steps=0, trials=1, progress=False,
                  structural={"variance_ratio": -1})


def test_the_method_of_moments_scale_removes_the_forecasts_own_variance_and_the_measurement_error():
    # misses of sd 0.1 around forecasts with their own variance 0.02^2 and measured with error 0.01: the
    # structure left is sqrt(0.1^2 - 0.02^2 - 0.01^2); its estimate from n = 20000 points has a relative
    # SE of about 1 / sqrt(2n) = 0.5% (a chi-square's), so 2% is four SEs; the residual's plain RMS
    # (no subtraction, the wrong formula) is 0.1, 2.6% off, and fails
    rng = np.random.default_rng(3)
    n = 20000
    residual = rng.normal(0.0, 0.1, n)
    truth = np.sqrt(0.1 ** 2 - 0.02 ** 2 - 0.01 ** 2)
    s = moment_scale(residual, np.full(n, 0.02 ** 2), np.full(n, 0.01))
    assert abs(s - truth) < 0.02 * truth, s
    assert abs(np.sqrt(np.mean(residual ** 2)) - truth) > 0.02 * truth  # the check has power
    assert moment_scale(residual[:5] * 0, np.ones(5), np.ones(5)) == 0.0  # forecasts inside their bands: none
    assert moment_scale([], [], []) == 0.0
    # the bands carry the larger of the estimated and the given s; a given 0 is no term
    both = Discrepancy({"m": 0.1, "k": 0.2}, 2, 10, "", {"m": 0.3, "k": 0.1, "n": 0.0})
    assert both.scale == {"m": 0.3, "k": 0.2} and both.to_dict()["method"] == "leave-one-run-out and given"
    assert Discrepancy({}, 0, 0, "one run", {"n": 0.0}).scale == {}


def test_the_transferred_scale_leaves_the_held_out_model_out_and_weights_models_equally():
    # experiments/calibration/transfer.py: three "models" whose forecasts miss by exactly +-s (own
    # variance and read-off error 0, so each model's moment scale is its s); the held-out model's s
    # must come from the others only, each model counting once whatever its number of points
    import pandas as pd

    from experiments.calibration.transfer import table, transferred

    def model(s, n):
        return pd.DataFrame({"residual": np.resize([s, -s], n), "own_var": np.zeros(n), "se": np.zeros(n),
                             "pi_low": np.full(n, -0.05), "pi_high": np.full(n, 0.05), "structural_sd": np.zeros(n)})

    models = {"p-2024-a": model(0.3, 4), "p-2024-b": model(0.1, 40), "p-2024-c": model(0.2, 4)}
    assert np.isclose(transferred(models, "p-2024-a"), np.sqrt((0.1 ** 2 + 0.2 ** 2) / 2))  # not pooled by points
    assert np.isclose(transferred(models, None), np.sqrt((0.09 + 0.01 + 0.04) / 3))
    twins = {**models, "q-2024-a": model(0.05, 4)}  # the same architecture in another paper: left out with it
    assert np.isclose(transferred(twins, "q-2024-a"), transferred(models, "p-2024-a"))
    rows = table(models).set_index("model")
    # b's misses of 0.1 fit inside z * s from a and c (1.645 * 0.255); a's 0.3 do not fit in 1.645 * 0.158
    assert rows.loc["p-2024-b", "inside_with"] == 40 and rows.loc["p-2024-a", "inside_with"] == 0
    assert rows.loc["p-2024-b", "inside_without"] == 0  # the plain +-0.05 band


def test_the_language_models_forecast_bands_hold_with_the_other_models_structural_error():
    # The recorded forecasts of experiments/calibration (case (d): the learner fitted to each published
    # language model's replace curve, its held-out accumulate and accumulate-subsample points beside
    # their 90% bands, results/*-learner-points.csv), scored as transfer.py scores them: each model's
    # band widened by the s of the other models. Pinned to the recorded run (2026-12-06): with the
    # held-out model and its twin left out, 121 of 123 inside against 47, Kazdan's Llama-2 12M 59 of 59
    # with s = 0.1151 (its own s would give 119, every model's 123: both fail); with every size of
    # its family left out, 69 and 10 — the s of one family does not carry to the other.
    from pathlib import Path

    from experiments.calibration.transfer import load, table

    models = load(Path(__file__).parents[1] / "experiments" / "calibration" / "results")
    by_model = table(models, "model").set_index("model")
    assert by_model.loc["all", ["points", "inside_without", "inside_with"]].tolist() == [123, 47, 121]
    llama = by_model.loc["kazdan-et-al-2024-llama-2-12m"]
    assert (llama.inside_with, llama.inside_without) == (59, 7)
    assert abs(llama.s_from_others - 0.11513) < 1e-5 and abs(by_model.loc["all", "s_from_others"] - 0.12741) < 1e-5
    by_family = table(models, "family").set_index("model")
    assert by_family.loc["all", "inside_with"] == 69 and by_family.loc["kazdan-et-al-2024-llama-2-12m", "inside_with"] == 10
