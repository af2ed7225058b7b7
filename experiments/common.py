"""Shared helpers of the experiments: run a scenario under several policies, tabulate, plot.

Each experiment is ``config.toml`` (the scenario and the policies to compare) + ``run.py`` (writes a
CSV table and a PNG figure to ``--out``) + ``README.md`` (the claim and what mixopt measured).
"""
import argparse
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

from mixopt import config as config_mod
from mixopt import montecarlo


def parse_args(here: Path, description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", default=str(here / "config.toml"))
    parser.add_argument("--out", default=str(here / "results"), help="folder for the CSV table and PNG figure")
    parser.add_argument("--seeds", type=int, help="override run.seeds")
    return parser.parse_args()


def load(path: str) -> dict:
    with open(path, "rb") as f:
        return tomllib.load(f)


def run_policies(base: dict, policies: dict[str, dict], seeds: int | None = None) -> dict[str, dict]:
    """Per-seed metrics (name -> (seeds, T + 1) array) of the base scenario under each named policy.

    A policy entry may hold ``[policy]`` keys and a ``truth`` table that overrides scenario.truth keys
    (e.g. the sampling temperature).
    """
    out = {}
    for name, changes in policies.items():
        changes = dict(changes)
        truth = {**base["scenario"].get("truth", {}), **changes.pop("truth", {})}
        data = {"scenario": {**base["scenario"], "truth": truth}, "policy": {**base.get("policy", {}), **changes},
                "run": {**base.get("run", {}), **({"seeds": seeds} if seeds else {})}}
        out[name] = montecarlo.simulate(config_mod.from_dict(data)).per_seed
    return out


def trajectories(results: dict[str, dict], metric: str) -> pd.DataFrame:
    """Long table: policy, generation, mean, standard error of the mean, median."""
    rows = []
    for name, per_seed in results.items():
        values = per_seed[metric]
        for t in range(values.shape[1]):
            column = values[:, t]
            rows.append({"policy": name, "generation": t, "mean": column.mean(),
                         "se": column.std(ddof=1) / np.sqrt(len(column)), "median": np.median(column)})
    return pd.DataFrame(rows)


def plot(table: pd.DataFrame, metric: str, path: Path, title: str, stat: str = "mean") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for name, group in table.groupby("policy", sort=False):
        ax.plot(group["generation"], group[stat], label=name)
        if stat == "mean":
            ax.fill_between(group["generation"], group["mean"] - 2 * group["se"], group["mean"] + 2 * group["se"],
                            alpha=0.2)
    ax.set_xlabel("generation")
    ax.set_ylabel(f"{metric} ({stat} over seeds)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_scenarios(config: dict, seeds: int | None = None) -> dict[str, dict[str, dict]]:
    """Scenario name -> policy name -> per-seed metrics: every ``[scenarios.NAME]`` table (the keys
    of a ``[scenario]`` table) under every ``[policies.NAME]``, with the shared ``[run]`` table."""
    out = {}
    for name, scenario in config["scenarios"].items():
        base = {"scenario": scenario, "run": config.get("run", {})}
        out[name] = run_policies(base, config["policies"], seeds)
    return out


def compare_scenarios(here: Path, description: str, metrics: list[str], derived=None) -> pd.DataFrame:
    """The main of a reproduction: runs ``config.toml``'s scenarios x policies, writes
    ``<scenario>_<metric>.csv`` and ``.png`` per scenario and metric, and ``final.csv`` (the last
    generation's mean and standard error per scenario, policy and metric); prints the final table.
    ``derived(scenario_config, policy_name, per_seed)`` may add metrics computed from the others."""
    args = parse_args(here, description)
    config = load(args.config)
    results = run_scenarios(config, args.seeds)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    finals = []
    for scenario, by_policy in results.items():
        if derived is not None:
            for policy, per_seed in by_policy.items():
                per_seed.update(derived(config, scenario, policy, per_seed))
        for metric in metrics:
            present = {p: r for p, r in by_policy.items() if metric in r}
            if not present:
                continue
            table = trajectories(present, metric)
            table.to_csv(out / f"{scenario}_{metric}.csv", index=False)
            plot(table, metric, out / f"{scenario}_{metric}.png", f"{scenario}: {metric}")
            last = table[table["generation"] == table["generation"].max()]
            finals.append(last.drop(columns="generation").assign(scenario=scenario, metric=metric))
    final = pd.concat(finals, ignore_index=True)[["scenario", "metric", "policy", "mean", "se", "median"]]
    final.to_csv(out / "final.csv", index=False)
    print(final.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return final
