"""Rare words: how many generations until the rarest 10% of the English word mass is gone, per policy.

A seed's tail is *gone* at the first generation where the model keeps less than 5% of the true mass
of the rarest words that together hold 10% of the frequency mass (``tail_mass`` < 0.05). Writes
``tail_mass.csv``, ``generations_until_gone.csv`` and ``tail_mass.png`` to ``--out``.
"""
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.common import load, parse_args, plot, run_policies, trajectories

GONE = 0.05


def generations_until_gone(tail_mass: np.ndarray) -> np.ndarray:
    """Per seed: first generation with tail_mass < GONE, or inf if it never happens in the horizon."""
    gone = tail_mass < GONE
    return np.where(gone.any(axis=1), gone.argmax(axis=1), np.inf)


def summarise(results: dict) -> pd.DataFrame:
    rows = []
    for name, per_seed in results.items():
        until = generations_until_gone(per_seed["tail_mass"])
        rows.append({"policy": name, "median_generations_until_gone": float(np.median(until)),
                     "share_of_seeds_gone": float(np.isfinite(until).mean()),
                     "final_tail_mass_median": float(np.median(per_seed["tail_mass"][:, -1])),
                     "final_support": float(per_seed["support"][:, -1].mean()),
                     "final_lost_mass": float(per_seed["lost_mass"][:, -1].mean())})
    return pd.DataFrame(rows)


def main():
    here = Path(__file__).parent
    args = parse_args(here, __doc__)
    config = load(args.config)
    policies = config.pop("policies")
    results = run_policies(config, policies, args.seeds)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = trajectories(results, "tail_mass")
    table.to_csv(out / "tail_mass.csv", index=False)
    summary = summarise(results)
    summary.to_csv(out / "generations_until_gone.csv", index=False)
    plot(table, "tail_mass", out / "tail_mass.png", "Rarest 10% of English word mass", stat="median")
    print(summary.to_string(index=False))


if __name__ == "__main__":
    main()
