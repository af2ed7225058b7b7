"""Gerstgrasser et al. 2024: accumulate keeps the test error bounded, replace grows it (linear
regression with a fixed design, and a Gaussian). Writes per-metric CSV tables and PNG figures and
``final.csv`` to ``--out``. Closed forms (fixed design, d features, M samples, noise sigma):
replace E[test_error_t] = (t + 1) E_0 with E_0 = sigma^2 tr((X^T X)^-1); accumulate stays below
(pi^2 / 6) E_0.
"""
from pathlib import Path

from experiments.common import compare_scenarios

METRICS = ["test_error", "kl", "variance_ratio"]

if __name__ == "__main__":
    compare_scenarios(Path(__file__).parent, __doc__, METRICS)
