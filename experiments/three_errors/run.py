"""Three errors: which error of model collapse dominates, and which policy holds it off.

One world (the mixture family's default truth); the statistical error (few samples a generation),
the expressivity error (a mixture of 2 components for a truth of 5) and the approximation error (3
EM iterations instead of 100) are switched on alone and together, each under replace, accumulate
and 10% fresh human data. Writes ``kl.csv`` (the trajectories), ``final.csv`` (per condition and
policy: kl at generation 0 and at the horizon, the growth between them, mode coverage) and
``three_errors.png`` (final kl per condition and policy) to ``--out``.
"""
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.common import load, parse_args, run_policies, trajectories


def world(config: dict, changes: dict) -> dict:
    """The base config with one error condition's scenario (and truth) keys applied."""
    changes = dict(changes)
    truth = {**config["scenario"].get("truth", {}), **changes.pop("truth", {})}
    return {**config, "scenario": {**config["scenario"], **changes, "truth": truth}}


def run_all(config: dict, seeds: int | None = None) -> dict[str, dict[str, dict]]:
    """condition -> policy -> per-seed metrics."""
    config = dict(config)
    errors, policies = config.pop("errors"), config.pop("policies")
    return {name: run_policies(world(config, changes), policies, seeds) for name, changes in errors.items()}


def summarise(results: dict) -> pd.DataFrame:
    rows = []
    for condition, by_policy in results.items():
        for policy, per_seed in by_policy.items():
            kl = per_seed["kl"]
            growth = kl[:, -1] - kl[:, 0]
            rows.append({"error": condition, "policy": policy, "kl_first": kl[:, 0].mean(),
                         "kl_final": kl[:, -1].mean(), "kl_final_se": kl[:, -1].std(ddof=1) / np.sqrt(len(kl)),
                         "kl_growth": growth.mean(), "kl_growth_se": growth.std(ddof=1) / np.sqrt(len(kl)),
                         "mode_coverage_final": per_seed["mode_coverage"][:, -1].mean()})
    return pd.DataFrame(rows)


def plot(summary: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = (summary["error"].unique(), summary["policy"].unique())  # the config's order, not alphabetical
    table = summary.pivot(index="error", columns="policy", values="kl_final").loc[order]
    errors = summary.pivot(index="error", columns="policy", values="kl_final_se").loc[order]
    fig, ax = plt.subplots(figsize=(7.0, 4.0))
    table.plot.bar(ax=ax, yerr=2 * errors, logy=True, rot=0)
    ax.set_ylabel("KL(truth || model) at the last generation")
    ax.set_xlabel("error switched on")
    ax.set_title("Three errors of model collapse, three policies (bars: ±2 s.e.)")
    ax.legend(title="policy", fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    here = Path(__file__).parent
    args = parse_args(here, __doc__)
    results = run_all(load(args.config), args.seeds)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pd.concat([trajectories(by_policy, "kl").assign(error=name) for name, by_policy in results.items()]).to_csv(
        out / "kl.csv", index=False)
    summary = summarise(results)
    summary.to_csv(out / "final.csv", index=False)
    plot(summary, out / "three_errors.png")
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.4g}"))


if __name__ == "__main__":
    main()
