"""What ``mixopt simulate`` prints: its table, CSV and JSON, without pandas (issue 30: a small command
imports only what it needs; pandas' import was about a tenth of a tiny simulate's start-up).

The table is laid out as ``pandas.DataFrame.to_string`` lays out the wide table (``tests/test_cli.py``
holds the two to the same text), the CSV as ``to_csv(index=False)`` writes the records.
"""
import csv
import io
import json

from mixopt import montecarlo

MAX_TABLE_ROWS = 26
COLUMNS = ("generation", "metric", "mean", "std", "seeds")


def format_result(result, fmt: str) -> str:
    """``table``: a readable per-generation summary; ``csv``/``json``: the records of the README's
    trajectory format."""
    records = montecarlo.records(result.per_seed)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        return out.getvalue()
    if fmt == "json":
        return json.dumps({**result.config.to_dict(), "trajectory": records}, indent=1) + "\n"
    index, columns = wide_cells(records)
    note = ""
    if len(index) > MAX_TABLE_ROWS:  # thin evenly, keep the last generation
        step = -(-len(index) // (MAX_TABLE_ROWS - 1))
        keep = sorted(set(range(0, len(index), step)) | {len(index) - 1})
        note = f"(every {step}th of {len(index)} generations shown; --format csv for all)\n"
        index = [index[i] for i in keep]
        columns = {name: [cells[i] for i in keep] for name, cells in columns.items()}
    return f"{_headline(result.config, records[0]['seeds'])}\n{layout('generation', index, columns)}\n{note}"


def wide_cells(records: list[dict]) -> tuple[list[str], dict[str, list[str]]]:
    """One row per generation, one ``mean ± std`` column per metric (in the records' order)."""
    index = list(dict.fromkeys(str(r["generation"]) for r in records))
    columns: dict[str, list[str]] = {}
    for r in records:
        columns.setdefault(r["metric"], []).append(f"{r['mean']:.4g} ± {r['std']:.2g}")
    return index, columns


def layout(index_name: str, index: list[str], columns: dict[str, list[str]]) -> str:
    """Text laid out as pandas prints a frame of strings with a named index: the column names right-aligned
    over their cells (each cell with a space before it), the index name on a line of its own, the index
    left-aligned, one space between columns."""
    first = max([len(index_name)] + [len(i) for i in index])
    widths = {name: max([len(name)] + [1 + len(c) for c in cells]) for name, cells in columns.items()}
    lines = [" " * first + "".join(" " + name.rjust(w) for name, w in widths.items()),
             index_name.ljust(first) + "".join(" " + " " * w for w in widths.values())]
    for row, label in enumerate(index):
        lines.append(label.ljust(first) + "".join(" " + columns[n][row].rjust(w) for n, w in widths.items()))
    return "\n".join(lines)


def _headline(config, seeds: int) -> str:
    s, p = config.scenario, config.policy
    fraction = p.human_fraction if not isinstance(p.human_fraction, tuple) else "schedule"
    truth = "".join(f" {key}={value}" for key, value in s.truth.items())
    if s.contamination:
        truth += (f" contamination={'schedule' if isinstance(s.contamination, tuple) else s.contamination}"
                  f" detector=({s.detector_tpr:g},{s.detector_fpr:g})")
    truth += "".join(f" {key}={value:g}" for key, value in s.limits.items())
    return (f"{s.family}{truth} T={s.generations} M={s.samples} budget={s.human_budget:g} | "
            f"human_fraction={fraction} source={p.human_source} retention={p.retention}"
            f"{f'(W={p.window})' if p.retention == 'window' else f'(gamma={p.age_weight:g})' if p.retention == 'age' else ''}"
            f"{'' if p.human_weight is None else ' human_weight=set'}"
            f"{' provenance_filter' if p.provenance_filter else ''} | "
            f"{seeds} seeds, sampler {config.sampler}; mean ± std across seeds")
