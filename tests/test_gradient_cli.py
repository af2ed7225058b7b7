"""Each optimisable key: ``mixopt optimize --method gradient`` improves a bad start, from the CLI.

The CLI re-evaluates the policy the optimiser started from (``start`` in the JSON) and the result on
the same fresh seeds, so their difference is paired (common random numbers). The test asks the
improvement to exceed 3 paired standard errors (SE from the reported 95% CI: half-width / 1.96),
so a key whose gradient does not reach the policy (frozen by a ``stop_gradient``, or dropped from the
write-back) fails: its result stays at the start and the margin is 0 within noise.

Starts keep lambda M >= 2: at lambda M near 1 the full Gaussian fit's scatter has chi-square degrees
of freedom near 0, where the relaxed gradient is biased (measured: +1.79 against a finite difference
of -1.15 at lambda M = 1; they agree at lambda M = 2.5).
"""
import json
import subprocess
import sys

import pytest

SMALL = ["--generations", "5", "--samples", "20", "--seeds", "16", "--eval-seeds", "400", "--steps", "30",
         "--learning-rate", "0.3", "--format", "json", "--quiet", "--start", "config"]  # the bad start itself
CASES = {
    "human_fraction": ["--human-fraction", "0.15", "--objective", "final:kl"],
    "human_fraction_schedule": ["--human-fraction", "0.15", "--objective", "final:kl"],
    "human_fraction_linear": ["--human-fraction", "0.15", "--objective", "final:kl"],
    "human_fraction_decay": ["--human-fraction", "0.15", "--objective", "final:kl"],
    # 30 fresh samples after generation 0, spread evenly at the start; replace wants them late
    "human_fraction_budget": ["--human-budget", "50", "--objective", "final:kl"],
    # the golden-ratio scenario of tests/test_optimize.py from a weight of 0.2
    "human_weight": ["--human-fraction", "0.5", "--human-weight", "0.2", "--fit", "mean",
                     "--objective", "final:mean_shift", "--generations", "10"],
    # a perfect verifier keeps synthetic labels near the truth: less of them is better than 95%
    "curation_fraction": ["--family", "regression", "--dim", "3", "--curation-fraction", "0.95",
                          "--objective", "final:test_error"],
    # mle shrinks the variance by (M - 1)/M a generation; a cold start makes it worse
    "temperature": ["--temperature", "0.7", "--objective", "final:kl"],
    "window": ["--retention", "window", "--window", "2", "--objective", "final:kl"],
}


@pytest.mark.parametrize("key", CASES)
def test_gradient_improves_a_bad_start_by_more_than_its_monte_carlo_error(key, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mixopt", "optimize", "--method", "gradient", "--space", key,
                           *SMALL, *CASES[key]], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    start = out["start"]
    se = (start["margin_ci_high"] - start["margin_ci_low"]) / (2 * 1.96)
    assert start["margin"] > 3 * se, (key, start["margin"], se, out["policy"], start["policy"])
