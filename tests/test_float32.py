"""Float32 spot checks of the main closed forms, through ``mixopt simulate`` as users run it.

The rest of the suite runs in float64 (tests/conftest.py); the CLI runs in float32. Each check reads
the JSON trajectory (mean and std across 20000 seeds per generation) and holds the mean to its
closed form within 4 standard errors (std / sqrt(seeds)); the wrong formula named beside each is
rejected (max |z| > 4) on the same numbers. Derivations: tests/test_closed_forms.py,
tests/test_categorical.py and tests/test_regression.py.
"""
import json
import subprocess
import sys

import numpy as np
import pytest

from mixopt.families.categorical import zipf_probs

SEEDS, T = 20000, 6
GENS = np.arange(T + 1)


def simulate(*flags):
    proc = subprocess.run([sys.executable, "-m", "mixopt", "simulate", "--generations", str(T), "--seeds",
                           str(SEEDS), "--format", "json", "--quiet", *flags], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["trajectory"]


def z_of(trajectory, metric, predicted):
    rows = sorted((r for r in trajectory if r["metric"] == metric), key=lambda r: r["generation"])
    mean = np.array([r["mean"] for r in rows])
    se = np.array([r["std"] for r in rows]) / np.sqrt(SEEDS)
    return (mean - predicted) / se


M, V, D, SIGMA = 30, 20, 4, 0.7
CHECKS = {  # name: (flags, metric, closed form, wrong formula)
    "gaussian-variance": (["--samples", str(M)], "variance_ratio",
                          ((M - 1) / M) ** (GENS + 1), ((M - 1) / M) ** GENS),
    "categorical-collision": (["--family", "categorical", "--vocab", str(V), "--zipf", "1.0", "--samples", str(M)],
                              "collision", 1 - (1 - 1 / M) ** (GENS + 1) * (1 - np.sum(zipf_probs(V, 1.0) ** 2)),
                              1 - (1 - 1 / M) ** GENS * (1 - np.sum(zipf_probs(V, 1.0) ** 2))),
    "regression-replace": (["--family", "regression", "--dim", str(D), "--noise", str(SIGMA), "--samples", str(M)],
                           "test_error", (GENS + 1) * SIGMA**2 * D / (M - D - 1), GENS * SIGMA**2 * D / (M - D - 1)),
}


@pytest.mark.parametrize("name", CHECKS)
def test_closed_form_in_float32(name):
    flags, metric, predicted, wrong = CHECKS[name]
    trajectory = simulate(*flags)
    z = z_of(trajectory, metric, predicted)
    assert np.all(np.abs(z) < 4), np.round(z, 2)
    assert np.max(np.abs(z_of(trajectory, metric, wrong))) > 4
