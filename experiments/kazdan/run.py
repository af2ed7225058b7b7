"""Kazdan et al. 2024: accumulate-subsample (train on M samples drawn from every batch so far)
collapses less than replace and more than accumulate. Writes per-metric CSV tables and PNG figures
and ``final.csv`` to ``--out``.
"""
from pathlib import Path

from experiments.common import compare_scenarios

METRICS = ["kl", "test_error", "variance_ratio"]

if __name__ == "__main__":
    compare_scenarios(Path(__file__).parent, __doc__, METRICS)
