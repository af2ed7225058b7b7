"""Alemohammad et al. 2023: the fresh-data self-consuming loop. Enough fresh human data per
generation keeps the model from collapsing; sampling bias (synthesis temperature tau < 1) raises
the quality of the samples and lowers their diversity.

Derived metrics of the model's *samples* (Gaussian, d = 1, truth N(0, 1); the model N(mu, s^2)
samples from N(mu, tau^2 s^2)): ``sample_diversity`` = tau^2 s^2 (their variance over the truth's;
recall), ``sample_quality`` = E[log p_truth(x)] - E_truth[log p_truth(x)] = -(mu^2 + tau^2 s^2 - 1)/2
(how typical they are under the truth; precision: 0 for the truth's own samples, > 0 for samples
concentrated near its mode). Writes per-metric CSV tables and PNG figures and ``final.csv``.
"""
from pathlib import Path

from experiments.common import compare_scenarios

METRICS = ["kl", "variance_ratio", "sample_diversity", "sample_quality"]


def sample_metrics(config: dict, scenario: str, policy: str, per_seed: dict) -> dict:
    tau = config["policies"][policy].get("temperature", 1.0)
    diversity = tau**2 * per_seed["variance_ratio"]
    return {"sample_diversity": diversity, "sample_quality": -(per_seed["mean_shift"] ** 2 + diversity - 1) / 2}


if __name__ == "__main__":
    compare_scenarios(Path(__file__).parent, __doc__, METRICS, derived=sample_metrics)
