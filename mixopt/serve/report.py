"""The benchmark's tables (summary with paired margins, budget-quality points) and ``report.md``
embedding the figures (``figures.py``), from its results table."""
import math
from pathlib import Path

import numpy as np
import pandas as pd

from mixopt.serve.figures import HEATMAP_RETENTIONS, _maximised, _named, plot_all


def summary_table(results: pd.DataFrame, per_seed: dict | None = None) -> pd.DataFrame:
    """The objective per scenario and named strategy (``final``: the objective's value over the seeds
    where they are known, else the metric's last generation), with 95% CI, human data used, what it spends
    (``budget``-matched, ``none`` after generation 0, or ``policy``), and, where the per-seed values
    are known (``per_seed[(scenario, strategy)]``), the paired margin against the scenario's best
    budget-matched baseline (``vs``; positive = better; ``margin_rel``: relative to its mean)."""
    from mixopt.optimizers.evaluate import paired_margin
    from mixopt.optimizers.baselines import budget_matched, zero_budget

    per_seed = per_seed or {}
    rows = []
    for (scenario, strategy), group in _named(results).groupby(["scenario", "strategy"], sort=False):
        spends = "budget" if budget_matched(strategy) else "none" if zero_budget(strategy) else "policy"
        if isinstance(group["error"].iloc[0], str) and group["error"].iloc[0]:
            rows.append({"scenario": scenario, "strategy": strategy, "spends": spends, "error": group["error"].iloc[0]})
            continue
        metric = group["objective"].iloc[0].split(":")[1]
        final = group[(group["metric"] == metric) & (group["generation"] == group["generation"].max())].iloc[0]
        value, low, high = final["mean"], final["ci_low"], final["ci_high"]
        values = per_seed.get((scenario, strategy))
        if values is not None:  # the objective itself (a mean: objective is not the last generation's value)
            half = 1.96 * values.std(ddof=1) / math.sqrt(len(values)) if len(values) > 1 else 0.0
            value, low, high = values.mean(), values.mean() - half, values.mean() + half
        rows.append({"scenario": scenario, "strategy": strategy, "spends": spends,
                     "objective": group["objective"].iloc[0], "final": value, "ci_low": low,
                     "ci_high": high, "human_used": group["human_used"].iloc[0], "error": ""})
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
    compared = summary[(summary["spends"] == "policy") & summary["vs"].notna()]
    if len(compared) > 1:
        pays = int((compared["margin_ci_low"] > 0).sum())
        lines.append(f"optimising pays (paired 95% CI above 0 against the best budget-matched heuristic that keeps "
                     f"the same constraints) in {pays} of {len(compared)} scenarios; in the other "
                     f"{len(compared) - pays} a simple heuristic is as good or better")
    for row in compared.itertuples():
        metric = row.objective
        if row.margin == 0 and row.margin_ci_low == 0 and row.margin_ci_high == 0:
            lines.append(f"{row.scenario}: {row.strategy} is {row.vs} itself: the search found nothing better "
                         f"than the best simple heuristic, {row.vs} ({row.objective})")
            continue
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
             "Optuna search over the budget's allocation, the retention rule (window length, age weight) "
             "within the scenario's constraints, on other seeds than these; margins are paired on the same seeds against the best budget-matched heuristic "
             "(`vs`).", "", *[f"- {line}" for line in headlines(summary)], "", markdown, ""]
    for scenario, paths in figures.items():
        lines += [f"## {scenario}", ""]
        if scenarios and scenario in scenarios:
            lines += [_scenario_words(scenarios[scenario]), ""]
            named = _named(results)
            for row in named[(named["scenario"] == scenario) & (named["generation"] == 0)].itertuples():
                if not _baseline(row.strategy) and isinstance(row.policy, str) and row.metric == "human_used":
                    lines += [f"Policy `{row.strategy}`: {_policy_words(scenarios[scenario]['scenario'], row.policy)}", ""]
        lines += [f"![{p.stem}]({p.name})" for p in paths] + [""]
    (root / "report.md").write_text("\n".join(lines))
    return summary


def _baseline(name: str) -> bool:
    from mixopt.optimizers.baselines import budget_matched, zero_budget

    return budget_matched(name) or zero_budget(name)


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
    head = ("| scenario | strategy | spends | objective | value | 95% CI | human used | margin vs best heuristic |\n"
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


