"""``mixopt benchmark``: suites of scenarios x strategies (the baselines and an optimised policy).

Every (scenario, strategy) pair is simulated on the same seeds and its trajectories are written as a
part file under ``OUT/parts`` as soon as it finishes, so an interrupted run resumes where it stopped
(the optimised strategy's search is an Optuna study in ``OUT/studies.log``, resumed the same way).
Then the results are gathered into ``results.csv`` (every metric, generation, strategy: mean, std,
95% CI), ``summary.csv`` and ``summary.md`` (the final objective per scenario and strategy), the
figures (PNG): the objective over generations with 95% bands, the Pareto front of quality vs human
data used, a heatmap of the final objective over human fraction x retention; and ``report.md``
embedding them.
"""
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from mixopt import config as config_mod
from mixopt.errors import ConfigError

HEATMAP_FRACTIONS = (0.0, 0.05, 0.1, 0.2, 0.5)
HEATMAP_RETENTIONS = ("replace", "accumulate", "window", "subsample")

SUITES = {
    "smoke": {  # seconds: what the tests run
        "seeds": 64, "trials": 6, "heatmap": (0.0, 0.2), "scenarios": {
            "gaussian-T4": ({"family": "gaussian", "generations": 4, "samples": 30, "human_budget": 60}, "final:kl"),
        }},
    "default": {  # a few minutes on a 2-core machine
        "seeds": 300, "trials": 24, "heatmap": HEATMAP_FRACTIONS, "scenarios": {
            "gaussian-T10": ({"family": "gaussian", "generations": 10, "samples": 50, "human_budget": 300},
                             "final:kl"),
            "categorical-T10": ({"family": "categorical", "generations": 10, "samples": 500, "human_budget": 1500,
                                 "truth": {"vocab": 100}}, "final:tv"),
            "regression-T10": ({"family": "regression", "generations": 10, "samples": 50, "human_budget": 300,
                                "truth": {"dim": 5}}, "final:test_error"),
        }},
    "full": {
        "seeds": 1000, "trials": 60, "heatmap": HEATMAP_FRACTIONS, "scenarios": {
            "gaussian-T20": ({"family": "gaussian", "generations": 20, "samples": 100, "human_budget": 600},
                             "final:kl"),
            "gaussian-T20-polluted": ({"family": "gaussian", "generations": 20, "samples": 100, "human_budget": 600,
                                       "contamination": 0.3, "truth": {"temperature": 0.9}}, "final:kl"),
            "categorical-T20": ({"family": "categorical", "generations": 20, "samples": 1000, "human_budget": 5000},
                                "final:tv"),
            "categorical-minority": ({"family": "categorical", "generations": 20, "samples": 1000,
                                      "human_budget": 3000, "truth": {"minority": 0.1, "minority_size": 100,
                                                                      "temperature": 0.9}},
                                     "final:minority_share"),
            "regression-T20": ({"family": "regression", "generations": 20, "samples": 50, "human_budget": 500,
                                "truth": {"dim": 10}}, "final:test_error"),
            "gmm-T10": ({"family": "gmm", "generations": 10, "samples": 1000, "human_budget": 3000}, "final:kl"),
            "neural-T8": ({"family": "neural", "generations": 8, "samples": 2000, "human_budget": 6000},
                          "final:kl"),
        }},
}


def _tasks(suite: dict, seeds: int) -> list[tuple[str, str, object, str]]:
    """(scenario name, strategy name, config or None for 'optimised', objective) of the suite."""
    from mixopt.optimize import baseline_configs

    tasks = []
    for name, (scenario, objective) in suite["scenarios"].items():
        base = config_mod.from_dict({"scenario": scenario, "run": {"seeds": seeds}})
        for strategy, config in baseline_configs(base).items():
            tasks.append((name, strategy, config, objective))
        tasks.append((name, "optimised", base, objective))
        for retention in HEATMAP_RETENTIONS:
            for fraction in suite["heatmap"]:
                changes = {"retention": retention, "human_fraction": fraction, "human_weight": None}
                tasks.append((name, f"grid:{retention}:{fraction:g}", _with(base, changes), objective))
    return tasks


def _with(config, changes):
    from mixopt.optimize.space import with_policy

    return with_policy(config, **changes)


def _records(config, objective_text: str, scenario: str, strategy: str) -> pd.DataFrame:
    from mixopt import montecarlo
    from mixopt.errors import SimulationError

    try:
        result = montecarlo.simulate(config)
    except SimulationError as err:  # a degenerate strategy is a result too: recorded, not fatal
        return pd.DataFrame([{"scenario": scenario, "strategy": strategy, "error": str(err)}])
    table = result.trajectory.copy()
    half = 1.96 * table["std"] / np.sqrt(table["seeds"])
    table = table.assign(ci_low=table["mean"] - half, ci_high=table["mean"] + half)
    human_used = result.per_seed["human_used"][:, -1].mean()
    return table.assign(scenario=scenario, strategy=strategy, objective=objective_text, human_used=human_used,
                        policy=json.dumps(_policy(config)), error="")


def _policy(config) -> dict:
    from mixopt.optimize import policy_dict

    return policy_dict(config.policy)


def _optimised(config, objective_text: str, trials: int, storage: str, name: str):
    from mixopt.families import make_family
    from mixopt.objectives import parse
    from mixopt.optimize import optimize_search
    from mixopt.recommend import RECOMMEND_SPACE

    family = make_family(config.scenario.family, config.scenario.truth, num_samples=config.scenario.samples)
    objective = parse(objective_text, family.metric_names + ("human_used",))
    return optimize_search(config, objective, RECOMMEND_SPACE, trials=trials, storage=storage,
                           study_name=f"benchmark-{name}", seeds=min(config.run.seeds, 128), seed=config.run.seed).config


def run(suite_name: str = "default", out: str | None = None, *, seeds: int | None = None, trials: int | None = None,
        progress: bool = False) -> pd.DataFrame:
    """Runs (or resumes) a suite; writes every file under ``out``; returns the summary table."""
    if suite_name not in SUITES:
        raise ConfigError(f"--suite must be one of {', '.join(SUITES)}, got {suite_name!r}")
    suite = SUITES[suite_name]
    seeds = suite["seeds"] if seeds is None else seeds
    trials = suite["trials"] if trials is None else trials
    if seeds < 2 or trials < 1:
        raise ConfigError(f"--seeds must be >= 2 and --trials >= 1, got {seeds} and {trials}")
    root = Path(out or f"mixopt-benchmark-{suite_name}")
    parts = root / "parts"
    try:
        parts.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"--out {root}: cannot create: {err.strerror}") from None
    tasks = _tasks(suite, seeds)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks), desc=f"benchmark {suite_name}")
    for scenario, strategy, config, objective in tasks:
        path = parts / f"{scenario}__{strategy.replace(':', '_')}__{seeds}.csv"
        if not path.exists():  # done by an earlier, interrupted run: kept
            if strategy == "optimised":
                config = _optimised(config, objective, trials, str(root / "studies.log"), scenario)
            table = _records(config, objective, scenario, strategy)
            tmp = path.with_suffix(".tmp")
            table.to_csv(tmp, index=False)
            tmp.replace(path)  # whole or absent: a Ctrl-C never leaves half a part
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    results = pd.concat([pd.read_csv(parts / f"{s}__{k.replace(':', '_')}__{seeds}.csv", keep_default_na=False,
                                     na_values=[""]) for s, k, _, _ in tasks], ignore_index=True)
    return write_report(results, root, suite_name)


def summary_table(results: pd.DataFrame) -> pd.DataFrame:
    """Final objective per scenario and strategy (grid cells left out), with 95% CI and human data used."""
    rows = []
    ok = results[results["strategy"].notna() & ~results["strategy"].str.startswith("grid:")]
    for (scenario, strategy), group in ok.groupby(["scenario", "strategy"], sort=False):
        if isinstance(group["error"].iloc[0], str) and group["error"].iloc[0]:
            rows.append({"scenario": scenario, "strategy": strategy, "error": group["error"].iloc[0]})
            continue
        metric = group["objective"].iloc[0].split(":")[1]
        final = group[(group["metric"] == metric) & (group["generation"] == group["generation"].max())].iloc[0]
        rows.append({"scenario": scenario, "strategy": strategy, "objective": group["objective"].iloc[0],
                     "final": final["mean"], "ci_low": final["ci_low"], "ci_high": final["ci_high"],
                     "human_used": group["human_used"].iloc[0], "error": ""})
    return pd.DataFrame(rows)


def write_report(results: pd.DataFrame, root: Path, suite_name: str) -> pd.DataFrame:
    results.to_csv(root / "results.csv", index=False)
    summary = summary_table(results)
    summary.to_csv(root / "summary.csv", index=False)
    markdown = _markdown(summary)
    (root / "summary.md").write_text(markdown)
    figures = plot_all(results, summary, root)
    lines = [f"# mixopt benchmark: suite `{suite_name}`", "",
             "Final objective per scenario and strategy (mean over seeds, 95% CI; `human_used`: fresh human "
             "samples consumed). `optimised` is an Optuna search over a decaying human-fraction schedule and "
             "the retention rule, on other seeds than these.", "", markdown, ""]
    for scenario, paths in figures.items():
        lines += [f"## {scenario}", ""] + [f"![{p.stem}]({p.name})" for p in paths] + [""]
    (root / "report.md").write_text("\n".join(lines))
    return summary


def _markdown(summary: pd.DataFrame) -> str:
    head = "| scenario | strategy | objective | final | 95% CI | human used |\n|---|---|---|---|---|---|"
    rows = []
    for row in summary.itertuples():
        if row.error:
            rows.append(f"| {row.scenario} | {row.strategy} | | degenerate: {row.error} | | |")
        else:
            rows.append(f"| {row.scenario} | {row.strategy} | {row.objective} | {row.final:.4g} | "
                        f"[{row.ci_low:.4g}, {row.ci_high:.4g}] | {row.human_used:.0f} |")
    return "\n".join([head, *rows]) + "\n"


def plot_all(results: pd.DataFrame, summary: pd.DataFrame, root: Path) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = {}
    for scenario, group in results.groupby("scenario", sort=False):
        objective = group["objective"].dropna().iloc[0]
        reduction, metric = objective.split(":")
        paths = []
        # 1. the objective's metric over generations, one line and 95% band per strategy
        fig, ax = plt.subplots(figsize=(6.4, 4.0))
        for strategy, rows in group[~group["strategy"].str.startswith("grid:")].groupby("strategy", sort=False):
            rows = rows[rows["metric"] == metric]
            if rows.empty:
                continue
            ax.plot(rows["generation"], rows["mean"], label=strategy)
            ax.fill_between(rows["generation"], rows["ci_low"], rows["ci_high"], alpha=0.2)
        ax.set(xlabel="generation", ylabel=f"{metric} (mean, 95% band)", title=f"{scenario}: {metric} over generations")
        ax.legend(fontsize=8)
        paths.append(_save(fig, root / f"{scenario}_trajectory.png", plt))
        # 2. quality vs human data used: every strategy and grid cell, the Pareto front drawn
        finals = _finals(group, metric)
        sign = -1.0 if metric in _maximised() else 1.0
        fig, ax = plt.subplots(figsize=(6.4, 4.0))
        grid = finals[finals["strategy"].str.startswith("grid:")]
        named = finals[~finals["strategy"].str.startswith("grid:")]
        ax.scatter(grid["human_used"], grid["final"], color="0.7", s=14, label="human fraction x retention grid")
        for row in named.itertuples():
            ax.scatter(row.human_used, row.final, s=30)
            ax.annotate(row.strategy, (row.human_used, row.final), fontsize=7)
        front = _pareto(finals, sign)
        ax.plot(front["human_used"], front["final"], "k--", lw=1, label="Pareto front")
        ax.set(xlabel="fresh human samples used", ylabel=f"final {metric}",
               title=f"{scenario}: quality vs human data")
        ax.legend(fontsize=8)
        paths.append(_save(fig, root / f"{scenario}_pareto.png", plt))
        # 3. heatmap of the final metric over (human fraction x retention)
        if not grid.empty:
            cells = grid.assign(retention=grid["strategy"].str.split(":").str[1],
                                fraction=grid["strategy"].str.split(":").str[2].astype(float))
            table = cells.pivot(index="retention", columns="fraction", values="final").reindex(
                [r for r in HEATMAP_RETENTIONS if r in set(cells["retention"])])
            fig, ax = plt.subplots(figsize=(6.4, 3.6))
            image = ax.imshow(table.to_numpy(float), aspect="auto", cmap="viridis_r" if sign > 0 else "viridis")
            ax.set_xticks(range(table.shape[1]), [f"{f:g}" for f in table.columns])
            ax.set_yticks(range(table.shape[0]), table.index)
            for (i, j), value in np.ndenumerate(table.to_numpy(float)):
                if math.isfinite(value):
                    ax.text(j, i, f"{value:.3g}", ha="center", va="center", fontsize=7,
                            bbox=dict(fc="w", alpha=0.6, lw=0))
            ax.set(xlabel="human fraction λ (fresh, within the budget)", title=f"{scenario}: final {metric}")
            fig.colorbar(image, ax=ax)
            paths.append(_save(fig, root / f"{scenario}_heatmap.png", plt))
        figures[scenario] = paths
    return figures


def _finals(group: pd.DataFrame, metric: str) -> pd.DataFrame:
    rows = group[(group["metric"] == metric)]
    last = rows[rows["generation"] == rows["generation"].max()]
    return last[["strategy", "mean", "human_used"]].rename(columns={"mean": "final"}).reset_index(drop=True)


def _pareto(finals: pd.DataFrame, sign: float) -> pd.DataFrame:
    """Points no other point beats on both human data used (less) and the objective (better)."""
    ordered = finals.assign(score=sign * finals["final"]).sort_values(["human_used", "score"])
    keep, best = [], math.inf
    for row in ordered.itertuples():
        if row.score < best:
            keep.append(row.Index)
            best = row.score
    return ordered.loc[keep]


def _maximised():
    from mixopt.objectives import MAXIMISE

    return MAXIMISE


def _save(fig, path: Path, plt) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main_table(summary: pd.DataFrame, fmt: str) -> str:
    if fmt == "json":
        return summary.to_json(orient="records", indent=1) + "\n"
    if fmt == "csv":
        return summary.to_csv(index=False)
    return _markdown(summary)


__all__ = ["SUITES", "run", "summary_table", "write_report"]
