"""The benchmark's figures (matplotlib, PNG) and ``report.md`` embedding them, from its results table."""
import math
from pathlib import Path

import numpy as np
import pandas as pd

HEATMAP_RETENTIONS = ("replace", "accumulate", "window", "subsample")  # the heatmap's rows

def _named(results: pd.DataFrame) -> pd.DataFrame:
    """The rows of named strategies (not the heatmap's grid cells nor the budget curve's points)."""
    strategy = results["strategy"].astype(str)
    return results[results["strategy"].notna() & ~strategy.str.startswith("grid:") & ~strategy.str.startswith("budget:")]


def summary_table(results: pd.DataFrame, per_seed: dict | None = None) -> pd.DataFrame:
    """Final objective per scenario and named strategy, with 95% CI, human data used, what it spends
    (``budget``-matched, ``none`` after generation 0, or ``policy``), and, where the per-seed values
    are known (``per_seed[(scenario, strategy)]``), the paired margin against the scenario's best
    budget-matched baseline (``vs``; positive = better; ``margin_rel``: relative to its mean)."""
    from mixopt.optimizers.evaluate import paired_margin
    from mixopt.optimizers.baselines import BUDGET_MATCHED, ZERO_BUDGET

    per_seed = per_seed or {}
    rows = []
    for (scenario, strategy), group in _named(results).groupby(["scenario", "strategy"], sort=False):
        spends = "budget" if strategy in BUDGET_MATCHED else "none" if strategy in ZERO_BUDGET else "policy"
        if isinstance(group["error"].iloc[0], str) and group["error"].iloc[0]:
            rows.append({"scenario": scenario, "strategy": strategy, "spends": spends, "error": group["error"].iloc[0]})
            continue
        metric = group["objective"].iloc[0].split(":")[1]
        final = group[(group["metric"] == metric) & (group["generation"] == group["generation"].max())].iloc[0]
        rows.append({"scenario": scenario, "strategy": strategy, "spends": spends,
                     "objective": group["objective"].iloc[0], "final": final["mean"], "ci_low": final["ci_low"],
                     "ci_high": final["ci_high"], "human_used": group["human_used"].iloc[0], "error": ""})
    summary = pd.DataFrame(rows)
    for column in ("vs", "margin", "margin_ci_low", "margin_ci_high", "margin_rel", "margin_rel_ci_low",
                   "margin_rel_ci_high"):
        summary[column] = None if column == "vs" else np.nan
    for scenario, group in summary.groupby("scenario", sort=False):
        matched = group[(group["spends"] == "budget") & (group["error"] == "")]
        if matched.empty:
            continue
        direction = "maximize" if group["objective"].iloc[0].split(":")[1] in _maximised() else "minimize"
        best = matched.loc[matched["final"].idxmin() if direction == "minimize" else matched["final"].idxmax()]
        theirs = per_seed.get((scenario, best["strategy"]))
        for index, row in group.iterrows():
            mine = per_seed.get((scenario, row["strategy"]))
            if theirs is None or mine is None or row["error"] or row["strategy"] == best["strategy"]:
                continue
            margin = paired_margin(mine, theirs, direction)
            rel = margin.get("relative", {})
            summary.loc[index, ["vs", "margin", "margin_ci_low", "margin_ci_high", "margin_rel", "margin_rel_ci_low",
                                "margin_rel_ci_high"]] = [best["strategy"], margin["mean"], margin["ci_low"],
                                                          margin["ci_high"], rel.get("mean", np.nan),
                                                          rel.get("ci_low", np.nan), rel.get("ci_high", np.nan)]
    return summary


def headlines(summary: pd.DataFrame) -> list[str]:
    """Per scenario, one line for each strategy that is not a baseline: its paired margin against the
    best budget-matched baseline, in words."""
    lines = []
    for row in summary[(summary["spends"] == "policy") & summary["vs"].notna()].itertuples():
        metric = row.objective
        if row.margin_ci_low > 0:
            verdict = f"better than the best simple heuristic, {row.vs}"
        elif row.margin_ci_high < 0:
            verdict = f"worse than the best simple heuristic, {row.vs}: use {row.vs}"
        else:
            verdict = f"not distinguishable from the best simple heuristic, {row.vs} (paired CI covers 0)"
        amount = (f"{row.margin_rel:+.0%} [{row.margin_rel_ci_low:+.0%}, {row.margin_rel_ci_high:+.0%}]"
                  if math.isfinite(row.margin_rel) else f"{row.margin:+.3g} [{row.margin_ci_low:+.3g}, {row.margin_ci_high:+.3g}]")
        lines.append(f"{row.scenario}: {row.strategy} is {verdict}; margin {amount} of its {metric} "
                     "(positive = better, paired on the same seeds)")
    return lines


def budget_curve(results: pd.DataFrame) -> pd.DataFrame:
    """The budget-quality points: scenario, human_budget, strategy, final mean and CI, human_used."""
    points = results[results["strategy"].astype(str).str.startswith("budget:")]
    rows = []
    for (scenario, strategy), group in points.groupby(["scenario", "strategy"], sort=False):
        metric = group["objective"].iloc[0].split(":")[1]
        final = group[(group["metric"] == metric) & (group["generation"] == group["generation"].max())]
        if final.empty:
            continue
        _, budget, name = strategy.split(":")
        rows.append({"scenario": scenario, "human_budget": float(budget), "strategy": name,
                     "objective": group["objective"].iloc[0], "final": final["mean"].iloc[0],
                     "ci_low": final["ci_low"].iloc[0], "ci_high": final["ci_high"].iloc[0],
                     "human_used": group["human_used"].iloc[0]})
    return pd.DataFrame(rows)


def write_report(results: pd.DataFrame, root: Path, suite_name: str, *, per_seed: dict | None = None,
                 scenarios: dict | None = None) -> pd.DataFrame:
    results.to_csv(root / "results.csv", index=False)
    summary = summary_table(results, per_seed)
    summary.to_csv(root / "summary.csv", index=False)
    curve = budget_curve(results)
    curve.to_csv(root / "budget_curve.csv", index=False)
    markdown = markdown_table(summary)
    (root / "summary.md").write_text(markdown)
    figures = plot_all(results, summary, root, curve)
    lines = [f"# mixopt benchmark: suite `{suite_name}`", "",
             "Final objective per scenario and strategy (mean over seeds, 95% CI; `human_used`: human samples "
             "consumed, generation 0's included; `spends`: `budget` = a simple heuristic that spends the "
             "scenario's human budget, `none` = no fresh human data after generation 0). `optimised` is an "
             "Optuna search over a decaying human-fraction schedule and the retention rule, on other seeds "
             "than these; margins are paired on the same seeds against the best budget-matched heuristic "
             "(`vs`).", "", *[f"- {line}" for line in headlines(summary)], "", markdown, ""]
    for scenario, paths in figures.items():
        lines += [f"## {scenario}", ""]
        if scenarios and scenario in scenarios:
            lines += [_scenario_words(scenarios[scenario]), ""]
            named = _named(results)
            for row in named[(named["scenario"] == scenario) & (named["generation"] == 0)].itertuples():
                if row.strategy not in _baseline_names() and isinstance(row.policy, str) and row.metric == "human_used":
                    lines += [f"Policy `{row.strategy}`: {_policy_words(scenarios[scenario]['scenario'], row.policy)}", ""]
        lines += [f"![{p.stem}]({p.name})" for p in paths] + [""]
    (root / "report.md").write_text("\n".join(lines))
    return summary


def _baseline_names() -> set:
    from mixopt.optimizers.baselines import BUDGET_MATCHED, ZERO_BUDGET

    return set(ZERO_BUDGET) | set(BUDGET_MATCHED)


def _scenario_words(entry: dict) -> str:
    scenario = entry["scenario"]
    truth = ", ".join(f"{k} = {v}" for k, v in scenario.get("truth", {}).items())
    return (f"Scenario: {scenario['family']}, T = {scenario['generations']} generations of M = {scenario['samples']} "
            f"samples, human budget {scenario['human_budget']:g} samples (generation 0's included)"
            f"{', contamination ' + str(scenario['contamination']) if scenario.get('contamination') else ''}"
            f"{'; truth: ' + truth if truth else ''}; objective `{entry['objective']}`.")


def _policy_words(scenario: dict, policy_json: str) -> str:
    import json

    from mixopt import config as config_mod
    from mixopt.describe import describe

    return describe(config_mod.from_dict({"scenario": scenario, "policy": json.loads(policy_json)}))


def markdown_table(summary: pd.DataFrame) -> str:
    head = ("| scenario | strategy | spends | objective | final | 95% CI | human used | margin vs best heuristic |\n"
            "|---|---|---|---|---|---|---|---|")
    rows = []
    for row in summary.itertuples():
        if row.error:
            rows.append(f"| {row.scenario} | {row.strategy} | {row.spends} | | degenerate: {row.error} | | | |")
            continue
        margin = ""
        if isinstance(row.vs, str):
            margin = (f"{row.margin_rel:+.0%} [{row.margin_rel_ci_low:+.0%}, {row.margin_rel_ci_high:+.0%}] vs {row.vs}"
                      if math.isfinite(row.margin_rel) else f"{row.margin:+.3g} vs {row.vs}")
        rows.append(f"| {row.scenario} | {row.strategy} | {row.spends} | {row.objective} | {row.final:.4g} | "
                    f"[{row.ci_low:.4g}, {row.ci_high:.4g}] | {row.human_used:.0f} | {margin} |")
    return "\n".join([head, *rows]) + "\n"


def plot_all(results: pd.DataFrame, summary: pd.DataFrame, root: Path, curve: pd.DataFrame | None = None) -> dict:
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
        for strategy, rows in _named(group).groupby("strategy", sort=False):
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
        named = finals[~finals["strategy"].str.startswith("grid:") & ~finals["strategy"].str.startswith("budget:")]
        finals = finals[~finals["strategy"].str.startswith("budget:")]
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
            paths.append(_heatmap_figure(grid, scenario, metric, sign, root, plt))
        # 4. the budget-quality curve: each budget-matched heuristic's final objective per total budget,
        # the best of them (what a budget buys the simple ways), and the named strategies as points
        points = curve[curve["scenario"] == scenario] if curve is not None and not curve.empty else None
        if points is not None and not points.empty:
            paths.append(_budget_figure(points, named, scenario, metric, sign, root, plt))
        figures[scenario] = paths
    return figures


def _heatmap_figure(grid: pd.DataFrame, scenario: str, metric: str, sign: float, root: Path, plt) -> Path:
    """The final objective over human fraction x retention, values in the cells."""
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
    return _save(fig, root / f"{scenario}_heatmap.png", plt)


def _budget_figure(points: pd.DataFrame, named: pd.DataFrame, scenario: str, metric: str, sign: float, root: Path,
                   plt) -> Path:
    """Each budget-matched heuristic's final objective per total budget, the best of them, and the
    named strategies as stars at the human data they used."""
    fig, ax = plt.subplots(figsize=(7.2, 4.0))
    for strategy, rows in points.groupby("strategy", sort=False):
        ax.plot(rows["human_budget"], rows["final"], marker="o", ms=3, lw=1, label=strategy)
    best = points.groupby("human_budget")["final"].agg("min" if sign > 0 else "max")
    ax.plot(best.index, best.to_numpy(), "k-", lw=2.2, alpha=0.35, label="best heuristic per budget")
    for row in named.itertuples():
        if row.strategy not in set(points["strategy"]):
            ax.scatter(row.human_used, row.final, marker="*", s=90, zorder=3)
            ax.annotate(row.strategy, (row.human_used, row.final), fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.set(xlabel="human budget (samples, generation 0's included)", ylabel=f"final {metric}",
           title=f"{scenario}: how much human data buys what")
    if sign > 0 and (points["final"] > 0).all():
        ax.set_yscale("log")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(fig, root / f"{scenario}_budget.png", plt)


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
