"""Each experiment's headline claim, asserted at a small size (seconds), and its script's outputs.

Comparisons of Monte-Carlo means use their standard errors (|z| > 4 for a difference, |z| < 4 for
an equality); fixed seeds.
"""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from _utils import two_sample_z, z_score
from experiments.common import load, run_policies
from experiments.minority.run import expand
from experiments.rare_words.run import generations_until_gone
from experiments.three_errors.run import run_all

ROOT = Path(__file__).resolve().parents[1]


def test_rare_words_replace_loses_a_tenth_of_the_mass_and_accumulate_does_not():
    pytest.importorskip("wordfreq", reason="the words extra: pip install 'mixopt[words]'")
    base = {"scenario": {"family": "categorical", "generations": 12, "samples": 3000,
                         "truth": {"source": "english", "vocab": 300}}, "run": {"seeds": 100}}
    results = run_policies(base, {"replace": {}, "accumulate": {"retention": "accumulate"},
                                  "10%-fresh": {"human_fraction": 0.1},
                                  "cold": {"truth": {"temperature": 0.9}}})
    until = {name: generations_until_gone(r["lost_mass"]) for name, r in results.items()}
    assert np.median(until["replace"]) < 12 and np.isinf(until["accumulate"]).all()
    assert np.median(until["cold"]) < np.median(until["replace"])  # sampling bias speeds the loss
    assert two_sample_z(results["10%-fresh"]["lost_mass"][:, -1], results["replace"]["lost_mass"][:, -1]) < -4


def test_minority_vanishes_under_replace_at_low_temperature_and_accumulate_protects_it():
    base = {"scenario": {"family": "categorical", "generations": 10, "samples": 300,
                         "truth": {"vocab": 200, "zipf": 1.0, "minority": 0.1, "minority_size": 20}},
            "run": {"seeds": 400}}
    policies = expand({"temperatures": [1.0, 0.8], "replace": {}, "accumulate": {"retention": "accumulate"},
                       "fresh": {"human_fraction": 0.1}})
    share = {name: r["minority_share"][:, -1] for name, r in run_policies(base, policies).items()}
    assert abs(z_score(share["replace T=1"], 1.0)) < 4  # fair in the mean at temperature 1 (a martingale)
    assert share["replace T=0.8"].mean() < 0.2
    assert two_sample_z(share["fresh T=0.8"], share["replace T=0.8"]) > 4
    assert two_sample_z(share["accumulate T=0.8"], share["fresh T=0.8"]) > 4


def test_three_errors_expressivity_is_an_offset_while_the_others_compound():
    base = load(ROOT / "experiments" / "three_errors" / "config.toml")
    base["scenario"].update(generations=4)
    base["scenario"]["truth"].update(bins=256)
    base["run"]["seeds"] = 40
    base["errors"] = {k: base["errors"][k] for k in ("none", "statistical", "expressivity", "approximation")}
    kl = {error: {policy: r["kl"] for policy, r in by_policy.items()} for error, by_policy in run_all(base).items()}

    def growth(error, policy):
        return kl[error][policy][:, -1] - kl[error][policy][:, 0]

    # too few components: far from the truth from the first fit on ...
    assert two_sample_z(kl["expressivity"]["replace"][:, 0], kl["none"]["replace"][:, 0]) > 4
    # ... but it does not compound: it grows less across generations than the error-free world does
    assert growth("expressivity", "replace").mean() < growth("none", "replace").mean()
    for error in ("statistical", "approximation"):  # these compound under replace, accumulate holds them
        assert two_sample_z(growth(error, "replace"), growth("none", "replace")) > 4
        assert two_sample_z(growth(error, "replace"), growth(error, "accumulate")) > 4


@pytest.mark.parametrize("name,files", [("minority", ["minority_share.csv", "final.csv", "minority_share.png"]),
                                        ("three_errors", ["kl.csv", "final.csv", "three_errors.png"]),
                                        ("rare_words", ["lost_mass.csv", "generations_until_gone.csv",
                                                        "lost_mass.png"])])
def test_experiment_scripts_write_their_table_and_figure(tmp_path, name, files):
    if name == "rare_words":
        pytest.importorskip("wordfreq", reason="the words extra: pip install 'mixopt[words]'")
    config = (ROOT / "experiments" / name / "config.toml").read_text()
    config = config.replace("generations = 30", "generations = 3").replace("generations = 20", "generations = 3")
    config = config.replace("samples = 20000", "samples = 500").replace("vocab = 2000", "vocab = 200")
    config = config.replace("generations = 10", "generations = 2").replace("bins = 512", "bins = 128")
    config = config.replace("em_steps = 100", "em_steps = 10")
    (tmp_path / "config.toml").write_text(config)
    proc = subprocess.run([sys.executable, "-m", f"experiments.{name}.run", "--config", str(tmp_path / "config.toml"),
                           "--out", str(tmp_path / "out"), "--seeds", "8"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    import matplotlib.image

    for file in files:
        path = tmp_path / "out" / file
        assert path.stat().st_size > 0
        if file.endswith(".png"):
            assert matplotlib.image.imread(path).ndim == 3
