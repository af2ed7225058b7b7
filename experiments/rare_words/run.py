"""Rare words: how many generations until 10% of the English word mass is gone, per policy.

A seed has lost 10% of the mass at the first generation where the words its model gives zero
probability hold at least 10% of the true frequency mass (``lost_mass`` >= 0.1; the words lost
first are the rare ones). Writes ``lost_mass.csv``, ``generations_until_gone.csv`` and
``lost_mass.png`` to ``--out``. (``tail_mass``, the model's mass on the rarest words holding 10%,
is reported too: at temperature 1 its mean stays 1, since the surviving rare words inherit the
mass of the dead ones; at temperature < 1 it collapses.)
"""
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.common import load, parse_args, plot, run_policies, trajectories

GONE = 0.10


def generations_until_gone(lost_mass: np.ndarray) -> np.ndarray:
    """Per seed: first generation with lost_mass >= GONE, or inf if it never happens in the horizon."""
    gone = lost_mass >= GONE
    return np.where(gone.any(axis=1), gone.argmax(axis=1), np.inf)


def summarise(results: dict) -> pd.DataFrame:
    rows = []
    for name, per_seed in results.items():
        until = generations_until_gone(per_seed["lost_mass"])
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
    table = trajectories(results, "lost_mass")
    table.to_csv(out / "lost_mass.csv", index=False)
    summary = summarise(results)
    summary.to_csv(out / "generations_until_gone.csv", index=False)
    plot(table, "lost_mass", out / "lost_mass.png", "True English word mass the model has lost")
    print(summary.to_string(index=False))


if __name__ == "__main__":
    main()
