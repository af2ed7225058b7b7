"""Minority representation: the minority group's share of the model across generations, per policy
and sampling temperature. ``minority_share`` = the model's mass on the group / its true mass
(1 = fairly represented). Writes ``minority_share.csv``, ``final.csv`` and ``minority_share.png``.
"""
from pathlib import Path


from experiments.common import load, parse_args, plot, run_policies, trajectories


def expand(policies: dict) -> dict:
    """Each policy at each temperature, named ``policy T=tau``."""
    temperatures = policies.pop("temperatures", [1.0])
    return {f"{name} T={tau:g}": {**changes, "truth": {"temperature": tau}}
            for tau in temperatures for name, changes in policies.items()}


def main():
    here = Path(__file__).parent
    args = parse_args(here, __doc__)
    config = load(args.config)
    results = run_policies(config, expand(config.pop("policies")), args.seeds)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = trajectories(results, "minority_share")
    table.to_csv(out / "minority_share.csv", index=False)
    final = table[table["generation"] == table["generation"].max()].drop(columns="generation")
    final.to_csv(out / "final.csv", index=False)
    plot(table, "minority_share", out / "minority_share.png", "Minority share of the model (1 = fair)")
    print(final.to_string(index=False))


if __name__ == "__main__":
    main()
