"""When do synthetic data pay? The ``learner`` family (issue 29): a linear model trained from zero by
gradient descent under a step budget, so that generation 0 need not be converged.

    python -m experiments.learning_curves.run repetition   # the price of repeated data (seconds)
    python -m experiments.learning_curves.run grid         # the optimiser's answer per cell (minutes)

``repetition``: U unique human samples trained for r epochs (compute = "epochs": S = r U / batch steps)
against fresh data at the same steps (r U samples, one epoch); the effective data D' (the fresh samples
that reach the same test error, read off the fresh learning curve) over U, beside the form Muennighoff
et al. 2023 fitted to language models, D'/U = 1 + R* (1 - exp(-(r - 1) / R*)), R* = 15.4.

``grid``: under-training (one epoch, eight epochs, converged) x synthetic share (m synthetic per n
human: 1 or 3 a generation) x repetition (replace: every human sample used once; accumulate: every
human sample kept, so used again every generation). Per cell, ``optimize --space human_weight`` (the
loss share of the human samples) against the heuristics keeping the same human share and retention
(the count share, ``as-set-R``) and against discarding the synthetic data (human weight 1), on the same
seeds (paired).
"""
import argparse
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent
TRUTH = {"dim": 20, "spectrum": 1.0, "signal": 1.0, "noise": 0.5, "lr": 0.5, "batch": 10.0}
R_STAR = 15.4  # Muennighoff et al. 2023 (arXiv 2305.16264), the fitted R_D* of repeated data
UNDER_TRAINING = {"1 epoch": {"epochs": 1.0}, "8 epochs": {"epochs": 8.0},
                  "converged": {"compute": "steps", "steps": 2000.0}}


def gen0_errors(truth: dict, samples: int, seeds: int, seed: int = 0) -> np.ndarray:
    """Generation 0's test error per seed: ``samples`` fresh human samples, the family's own fit."""
    import jax
    import jax.numpy as jnp

    from mixopt.families import make_family

    family = make_family("learner", truth)

    def one(key):
        rows = family.sample(key, family.truth, samples)
        params = family.fit(None, family.data_stats(rows, jnp.ones(samples)), family.empty_stats(), None)
        return family.metrics(params)["test_error"]

    return np.asarray(jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(seed), seeds)), np.float64)


def effective_data(unique: int, epochs: list[float], *, truth: dict = TRUTH, seeds: int = 2000,
                   points: int = 12) -> pd.DataFrame:
    """Per epoch count r: the test error of U samples for r epochs, of r U fresh samples for one, and the
    effective data D'/U (the fresh learning curve, log-interpolated, at the repeated run's error)."""
    sizes = np.unique(np.round(unique * np.concatenate([np.geomspace(1, 2 * max(epochs), points), epochs])).astype(int))
    fresh = np.array([gen0_errors({**truth, "epochs": 1.0}, int(n), seeds, seed=1).mean() for n in sizes])
    rows = []
    for r in epochs:
        repeated = gen0_errors({**truth, "epochs": float(r)}, unique, seeds, seed=2)
        same_steps = fresh[np.searchsorted(sizes, round(r * unique))]
        # the fresh curve falls with n: interpolate log n against the error, decreasing order reversed
        d_eff = float(np.exp(np.interp(-repeated.mean(), -fresh, np.log(sizes)))) / unique
        rows.append({"epochs": r, "unique": unique, "test_error_repeated": float(repeated.mean()),
                     "se_repeated": float(repeated.std(ddof=1) / np.sqrt(seeds)),
                     "test_error_fresh_same_steps": float(same_steps), "effective_data": d_eff,
                     "muennighoff": 1 + R_STAR * (1 - np.exp(-(r - 1) / R_STAR))})
    table = pd.DataFrame(rows)
    table["fitted_r_star"] = fitted_r_star(table["epochs"].to_numpy(), table["effective_data"].to_numpy())
    return table


def fitted_r_star(epochs: np.ndarray, effective: np.ndarray) -> float:
    """The R* of D'/U = 1 + R* (1 - exp(-(r - 1) / R*)) closest to the curve (least squares on a log grid)."""
    grid = np.geomspace(0.1, 100, 2000)
    form = 1 + grid[:, None] * (1 - np.exp(-(epochs[None, :] - 1) / grid[:, None]))
    return float(grid[np.argmin(((form - effective[None, :]) ** 2).sum(axis=1))])


def repetition_figure(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.plot(table["epochs"], table["epochs"], color="grey", linestyle=":", label="fresh data (D' = r U)")
    ax.plot(table["epochs"], table["effective_data"], marker="o", label="learner: U samples for r epochs")
    ax.plot(table["epochs"], table["muennighoff"], linestyle="--", label="Muennighoff et al. 2023 form, R* = 15.4")
    r_star = float(table["fitted_r_star"].iloc[0])
    ax.plot(table["epochs"], 1 + r_star * (1 - np.exp(-(table["epochs"] - 1) / r_star)), linestyle="-.",
            label=f"the same form fitted to the learner, R* = {r_star:.2g}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("epochs r over the same U samples")
    ax.set_ylabel("effective data D' / U")
    ax.set_title(f"Repeated data are worth less than fresh data (learner d = 20, U = {int(table['unique'][0])})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def cell_config(under: dict, human_fraction: float, retention: str, *, generations: int, samples: int,
                seeds: int):
    from mixopt import config as config_mod

    return config_mod.from_dict({"scenario": {"family": "learner", "generations": generations, "samples": samples,
                                              "truth": {**TRUTH, **under}},
                                 "policy": {"human_fraction": human_fraction, "retention": retention},
                                 "run": {"seeds": seeds}})


def grid(*, generations: int = 10, samples: int = 80, seeds: int = 512, trials: int = 20, eval_seeds: int = 4000,
         storage: Path) -> pd.DataFrame:
    """The optimiser's human weight in each cell, against the count share and against human weight 1."""
    from mixopt.objectives import parse
    from mixopt.optimizers.evaluate import paired_values
    from mixopt.optimizers.space import with_policy
    from mixopt.serve.optimize import optimize

    objective = parse("final:test_error", None)[0]
    rows = []
    for under_name, under in UNDER_TRAINING.items():
        for ratio, fraction in ((1, 0.5), (3, 0.25)):
            for retention in ("replace", "accumulate"):
                config = cell_config(under, fraction, retention, generations=generations, samples=samples,
                                     seeds=seeds)
                report = optimize(config, objective="final:test_error", space="human_weight", trials=trials,
                                  eval_seeds=eval_seeds, storage=str(storage))
                weight = report["policy"].get("human_weight")
                answer = with_policy(config, human_weight=weight) if weight is not None else config
                values, _ = paired_values({"answer": answer, "human only": with_policy(config, human_weight=1.0),
                                           "count share": config}, objective, seeds=eval_seeds, seed=7)
                final = {k: np.asarray(objective.value(v)) for k, v in values.items()}
                gain = final["human only"] - final["answer"]
                half = 1.96 * gain.std(ddof=1) / np.sqrt(len(gain))
                rows.append({"under_training": under_name, "synthetic_per_human": ratio, "retention": retention,
                             "answer": report["answer"], "human_weight": weight,
                             "test_error": float(final["answer"].mean()),
                             "count_share": float(final["count share"].mean()),
                             "human_only": float(final["human only"].mean()),
                             "gain_vs_human_only": float(gain.mean()), "gain_low": float(gain.mean() - half),
                             "gain_high": float(gain.mean() + half),
                             "synthetic_pays": bool(gain.mean() - half > 0)})
                print(pd.DataFrame(rows[-1:]).to_string(index=False), flush=True)
    return pd.DataFrame(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=("repetition", "grid"))
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--seeds", type=int, default=2000)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from mixopt.runtime import enable_compilation_cache

    enable_compilation_cache()
    if args.part == "repetition":
        table = effective_data(100, [1, 2, 4, 8, 16, 32, 64], seeds=args.seeds)
        repetition_figure(table, out / "repetition.png")
    else:
        table = grid(storage=out / "grid-studies.log")
    table.to_csv(out / f"{args.part}.csv", index=False)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
