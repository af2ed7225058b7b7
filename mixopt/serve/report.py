"""The benchmark's figures (matplotlib, PNG) and ``report.md`` embedding them, from its results table."""
import math
from pathlib import Path

import numpy as np
import pandas as pd

HEATMAP_RETENTIONS = ("replace", "accumulate", "window", "subsample")  # the heatmap's rows

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
    markdown = markdown_table(summary)
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


def markdown_table(summary: pd.DataFrame) -> str:
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
