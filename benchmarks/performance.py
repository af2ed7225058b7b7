"""The README's performance table, regenerated from the benchmarks' CSVs (issue 10's goals).

Reads what ``benchmarks/simulate.py`` and ``benchmarks/optimize.py`` wrote under
``benchmarks/results/`` (each ratio was measured within one run of its script) and prints a
markdown table: what was measured, mixopt, the reference, the ratio and the goal, and whether it is
met. A CSV that is missing gives a row that says which command makes it. Writes
``performance.csv`` beside them.

Run: ``python benchmarks/performance.py`` after the benchmarks.
"""
import argparse
from pathlib import Path

import pandas as pd


def _read(results: Path, name: str) -> pd.DataFrame | None:
    path = results / name
    return pd.read_csv(path) if path.exists() else None


def _missing(what, goal, command):
    return what, None, None, None, goal, f"no CSV: run {command}"


def _speedup(what, mixopt, reference, ratio, goal):
    return what, mixopt, reference, ratio, f">= {goal:g}x", "met" if ratio >= goal else "NOT met"


def _counts_rows(results):
    table = _read(results, "simulate_counts.csv")
    for M, method in ((1000, "engine inverse_cdf"), (100_000, "engine poisson")):
        what = f"categorical V = 1000, M = {M:,}, T = 99, 400 seeds (whole simulation)"
        if table is None:
            yield _missing(what, ">= 2x", "python benchmarks/simulate.py --part counts")
            continue
        at = table[table.M == M].set_index("method")["wall_s"]
        yield _speedup(what, f"{at[method]:.3g} s", f"numpy multinomial {at['numpy multinomial']:.3g} s",
                       at["numpy multinomial"] / at[method], 2.0)


def _naive_rows(results):
    table = _read(results, "simulate.csv")
    what = "naive Gaussian M = 1e4, T = 100, 1000 seeds, replace"
    if table is None:
        yield _missing(what, ">= 3x", "python benchmarks/simulate.py --part gaussian")
        return
    rows = table[(table.M == 10_000) & (table.retention == "replace")].set_index("method")
    engine, numpy = rows.loc["engine naive"], rows.loc["numpy vectorised"]
    yield _speedup(what, f"{engine.wall_s:.3g} s ({engine.seeds} seeds)",
                   f"numpy vectorised {numpy.wall_s:.3g} s ({numpy.seeds} seeds)",
                   numpy.us_per_seed_gen / engine.us_per_seed_gen, 3.0)


def _recommend_rows(results):
    table = _read(results, "optimize_recommend.csv")
    if table is None:
        yield _missing("optimising recommend, whole process", "<= 5 s over",
                       "python benchmarks/optimize.py --part recommend")
        return
    for row in table.itertuples():
        yield (f"optimising recommend, {row.scenario}, {row.cache} cache", f"{row.whole_process_s:.3g} s",
               f"budget {row.time_budget:g} s + 5 s", row.whole_process_s - row.time_budget, "<= 5 s over",
               "met" if row.whole_process_s <= row.time_budget + 5 else "NOT met")


def _worker_rows(results):
    table = _read(results, "optimize_slow_workers.csv")
    what = "optimize, 2 workers vs 1, trials/s (slow trials)"
    if table is None:
        yield _missing(what, ">= 1.7x", "python benchmarks/optimize.py --part workers")
        return
    one, two = table.set_index("workers").loc[1], table.set_index("workers").loc[2]
    yield _speedup(what, f"{two.trials_per_s:.3g} trials/s", f"1 worker {one.trials_per_s:.3g} trials/s "
                   f"({one.seconds_per_trial_1_worker:.2g} s a trial)", two.trials_per_s / one.trials_per_s, 1.7)


def table(results: Path) -> pd.DataFrame:
    rows = [*_counts_rows(results), *_naive_rows(results), *_recommend_rows(results), *_worker_rows(results)]
    return pd.DataFrame(rows, columns=["what", "mixopt", "reference", "ratio", "goal", "status"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    frame = table(Path(args.results))
    print("| what | mixopt | reference | ratio (recommend: s over budget) | goal | status |\n"
          "|---|---|---|---|---|---|")
    for row in frame.itertuples():
        ratio = "" if pd.isna(row.ratio) else f"{row.ratio:.2f}"
        print(f"| {row.what} | {row.mixopt or ''} | {row.reference or ''} | {ratio} | {row.goal} | {row.status} |")
    frame.to_csv(Path(args.results) / "performance.csv", index=False)


if __name__ == "__main__":
    main()
