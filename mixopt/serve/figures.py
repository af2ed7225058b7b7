"""The benchmark's figures (matplotlib, PNG), from its results table: the objective over generations,
quality vs human data (Pareto front, dominated points marked), the fraction x retention heatmap (log
colour scale, where the budget binds) and the budget-quality curve."""
import math
from pathlib import Path

import numpy as np
import pandas as pd

HEATMAP_RETENTIONS = ("replace", "accumulate", "window", "subsample")  # the heatmap's rows


def _named(results: pd.DataFrame) -> pd.DataFrame:
    """The rows of named strategies (not the heatmap's grid cells nor the budget curve's points)."""
    strategy = results["strategy"].astype(str)
    return results[results["strategy"].notna() & ~strategy.str.startswith("grid:") & ~strategy.str.startswith("budget:")]


def _maximised():
    from mixopt.objectives import MAXIMISE

    return MAXIMISE


def plot_all(results: pd.DataFrame, summary: pd.DataFrame, root: Path, curve: pd.DataFrame | None = None) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = {}
    for scenario, group in results.groupby("scenario", sort=False):
        metric = group["objective"].dropna().iloc[0].split(":")[1]
        sign = -1.0 if metric in _maximised() else 1.0
        finals = _finals(group, metric)
        grid = finals[finals["strategy"].str.startswith("grid:")]
        named = finals[~finals["strategy"].str.startswith("grid:") & ~finals["strategy"].str.startswith("budget:")]
        paths = [_trajectory_figure(group, scenario, metric, root, plt),
                 _pareto_figure(finals[~finals["strategy"].str.startswith("budget:")], named, grid, scenario, metric,
                                sign, root, plt)]
        if not grid.empty:
            paths.append(_heatmap_figure(group, grid, scenario, metric, sign, root, plt))
        points = curve[curve["scenario"] == scenario] if curve is not None and not curve.empty else None
        if points is not None and not points.empty:
            paths.append(_budget_figure(points, named, scenario, metric, sign, root, plt))
        figures[scenario] = paths
    return figures


def log_scale(values, *, spread: float = 10.0) -> bool:
    """Whether a metric's curves read better on a log axis: all positive and spanning more than
    ``spread`` (a linear axis squashes the strategies worth comparing near 0)."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    return bool(values.size and (values > 0).all() and values.max() > spread * values.min())


def coinciding(curves: dict) -> dict:
    """name -> the earlier name whose curve it repeats exactly (e.g. the optimised policy that is a
    heuristic): drawn dashed on top and labelled, so neither line hides the other."""
    out, seen = {}, {}
    for name, values in curves.items():
        key = tuple(np.round(np.asarray(values, float), 12))
        if key in seen:
            out[name] = seen[key]
        else:
            seen[key] = name
    return out


def _trajectory_figure(group: pd.DataFrame, scenario: str, metric: str, root: Path, plt) -> Path:
    """The objective's metric over generations, one line and 95% band per named strategy (a log axis
    where the curves span more than a factor 10; a curve equal to another labelled "= that one")."""
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(7.6, 4.0))
    rows_of = {strategy: rows[rows["metric"] == metric] for strategy, rows in _named(group).groupby("strategy", sort=False)}
    rows_of = {k: v for k, v in rows_of.items() if not v.empty}
    same = coinciding({k: v["mean"].to_numpy() for k, v in rows_of.items()})
    for strategy, rows in rows_of.items():
        style = dict(ls="--", lw=2.2, zorder=4) if strategy in same else {}
        label = f"{strategy} (= {same[strategy]})" if strategy in same else strategy
        ax.plot(rows["generation"], rows["mean"], label=label, **style)
        ax.fill_between(rows["generation"], rows["ci_low"], rows["ci_high"], alpha=0.2)
    if rows_of and log_scale(pd.concat([r["mean"] for r in rows_of.values()])):
        ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # generations are whole
    ax.set(xlabel="generation", ylabel=f"{metric} (mean, 95% band)", title=f"{scenario}: {metric} over generations")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside the data
    return _save(fig, root / f"{scenario}_trajectory.png", plt)


def _pareto_figure(finals, named, grid, scenario: str, metric: str, sign: float, root: Path, plt) -> Path:
    """Quality vs human data used: every named strategy and grid cell labelled, the Pareto front drawn,
    and the points another beats on both axes marked as dominated (hollow)."""
    front = _pareto(finals, sign)
    on_front = set(front["strategy"])
    fig, ax = plt.subplots(figsize=(7.6, 4.4))
    points = pd.concat([grid, named])
    offsets = label_offsets(points["human_used"].to_numpy(float), points["final"].to_numpy(float))
    for row, offset in zip(points.itertuples(), offsets):
        is_grid = row.strategy.startswith("grid:")
        label = row.strategy.removeprefix("grid:").replace(":", " λ=") if is_grid else row.strategy
        dominated = row.strategy not in on_front
        ax.scatter(row.human_used, row.final, s=14 if is_grid else 34, color="0.6" if is_grid else "C0",
                   facecolors="none" if dominated else None, zorder=3)
        ax.annotate(label + (" (dominated)" if dominated and not is_grid else ""), (row.human_used, row.final),
                    fontsize=6 if is_grid else 7, color="0.45" if is_grid else "k", xytext=(3, offset),
                    textcoords="offset points")
    ax.plot(front["human_used"], front["final"], "k--", lw=1, label="Pareto front (filled: on it; hollow: dominated)")
    ax.plot([], [], "o", color="0.6", ms=4, label="grid: retention λ=fraction")
    ax.set(xlabel="human samples used (generation 0's included)", ylabel=f"final {metric}",
           title=f"{scenario}: quality vs human data")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(fig, root / f"{scenario}_pareto.png", plt)


def label_offsets(x, y, *, near: float = 0.03, step: float = 8.0) -> list[float]:
    """Vertical offsets (points) for labels at (x, y): labels of points within ``near`` of each other
    (as a share of each axis's span) are stacked ``step`` apart instead of printed over each other."""
    span = lambda v: (np.nanmax(v) - np.nanmin(v)) or 1.0  # noqa: E731
    u, v = (np.asarray(x) - np.nanmin(x)) / span(x), (np.asarray(y) - np.nanmin(y)) / span(y)
    offsets: list[float] = []
    for i in range(len(u)):
        taken = {offsets[j] for j in range(i) if abs(u[i] - u[j]) < near and abs(v[i] - v[j]) < near}
        offset = 3.0
        while offset in taken:
            offset += step
        offsets.append(offset)
    return offsets


def budget_binds(samples: float, generations: int, fraction: float, used: float) -> bool:
    """Whether the fresh budget ran out for a constant fraction: it used fewer human samples than the
    simulator's own count asks, M + T round(fraction M) (round half to even, as the simulator)."""
    asked = samples + generations * float(np.round(fraction * samples))
    return used < asked - 0.5


def _heatmap_figure(group, grid: pd.DataFrame, scenario: str, metric: str, sign: float, root: Path, plt) -> Path:
    """The final objective over human fraction x retention on a log colour scale, values in the cells;
    a cell whose fresh data ran out (it used less than the fraction asked) is marked "budget"."""
    from matplotlib.colors import LogNorm

    cells = grid.assign(retention=grid["strategy"].str.split(":").str[1],
                        fraction=grid["strategy"].str.split(":").str[2].astype(float))
    order = [r for r in HEATMAP_RETENTIONS if r in set(cells["retention"])]
    table = cells.pivot(index="retention", columns="fraction", values="final").reindex(order)
    used = cells.pivot(index="retention", columns="fraction", values="human_used").reindex(order)
    values = table.to_numpy(float)
    positive = values[np.isfinite(values) & (values > 0)]
    norm = LogNorm(positive.min(), positive.max()) if positive.size and positive.min() < positive.max() else None
    fig, ax = plt.subplots(figsize=(7.0, 3.8))
    image = ax.imshow(values, aspect="auto", cmap="viridis_r" if sign > 0 else "viridis", norm=norm)
    ax.set_xticks(range(table.shape[1]), [f"{f:g}" for f in table.columns])
    ax.set_yticks(range(table.shape[0]), table.index)
    samples = _samples(group)
    generations = int(group["generation"].max())
    for (i, j), value in np.ndenumerate(values):
        if math.isfinite(value):
            binds = budget_binds(samples, generations, table.columns[j], used.iloc[i, j])
            ax.text(j, i, f"{value:.3g}" + ("\nbudget" if binds else ""), ha="center", va="center", fontsize=7,
                    bbox=dict(fc="w", alpha=0.6, lw=0))
    ax.set(xlabel="human fraction λ (fresh)", title=f"{scenario}: final {metric} (log colour scale)")
    fig.colorbar(image, ax=ax)
    fig.text(0.01, 0.01, '"budget": the fresh human budget ran out before the last generation (fewer human '
             "samples than λ asks)", fontsize=6)
    return _save(fig, root / f"{scenario}_heatmap.png", plt)


def _samples(group: pd.DataFrame) -> float:
    """M: the human samples of generation 0 (every strategy's human_used at generation 0)."""
    used = group[(group["metric"] == "human_used") & (group["generation"] == 0)]["mean"]
    return float(used.iloc[0]) if not used.empty else float(group["human_used"].min())


def _budget_figure(points: pd.DataFrame, named: pd.DataFrame, scenario: str, metric: str, sign: float, root: Path,
                   plt) -> Path:
    """Each budget-matched heuristic's final objective per total budget, the best of them, and the
    named strategies as stars at the human data they used."""
    fig, ax = plt.subplots(figsize=(7.2, 4.0))
    for strategy, rows in points.groupby("strategy", sort=False):
        ax.plot(rows["human_budget"], rows["final"], marker="o", ms=3, lw=1, label=strategy)
    best = points.groupby("human_budget")["final"].agg("min" if sign > 0 else "max")
    ax.plot(best.index, best.to_numpy(), "k-", lw=2.2, alpha=0.35, label="best heuristic per budget")
    stars = [row for row in named.itertuples() if row.strategy not in set(points["strategy"])]
    offsets = label_offsets(np.array([r.human_used for r in stars], float), np.array([r.final for r in stars], float))
    for row, colour, offset in zip(stars, star_colours(len(stars)), offsets):
        ax.scatter(row.human_used, row.final, marker="*", s=90, zorder=3, color=colour, edgecolors="k", linewidths=0.4)
        ax.annotate(row.strategy, (row.human_used, row.final), fontsize=7, xytext=(4, offset), textcoords="offset points",
                    color=colour)
    ax.set(xlabel="human budget (samples, generation 0's included)", ylabel=f"final {metric}",
           title=f"{scenario}: how much human data buys what")
    if sign > 0 and (points["final"] > 0).all():
        ax.set_yscale("log")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(fig, root / f"{scenario}_budget.png", plt)


def star_colours(num: int) -> list:
    """Colours for the named strategies' stars that no heuristic line uses (the lines take matplotlib's
    default cycle, tab10; the stars take Dark2, whose colours are not tab10's)."""
    import matplotlib

    palette = matplotlib.colormaps["Dark2"].colors
    return [palette[i % len(palette)] for i in range(num)]


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


def _save(fig, path: Path, plt) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
