"""Shumailov et al. 2024: Gaussian variance collapse under recursive training, and how keeping part
of the original (generation 0) human data slows it. Writes per-metric CSV tables and PNG figures and
``final.csv`` to ``--out``. Closed form under replace (mle): E[variance_ratio_t] = ((M-1)/M)^(t+1).
"""
from pathlib import Path

from experiments.common import compare_scenarios

METRICS = ["variance_ratio", "kl", "w2"]

if __name__ == "__main__":
    compare_scenarios(Path(__file__).parent, __doc__, METRICS)
