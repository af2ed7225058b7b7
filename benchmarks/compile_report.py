"""Where a cold test suite spends its time compiling (issue 10, CI <= 12 minutes).

Run the suite with an empty compilation cache and ``MIXOPT_COMPILE_REPORT`` set to a folder; each
test process (``tests/conftest.py``) then appends one JSON line per XLA compilation — the test
running, the program's name and its seconds (a load from the persistent cache is counted too, and
takes well under a second). CLI subprocesses started by the tests are not recorded. Then::

    rm -rf /tmp/cold-cache /tmp/compiles
    MIXOPT_CACHE_DIR=/tmp/cold-cache MIXOPT_COMPILE_REPORT=/tmp/compiles .venv/bin/python -m pytest -q -n auto --dist loadfile
    python benchmarks/compile_report.py /tmp/compiles --cache /tmp/cold-cache

prints the seconds by test module, by test and by program, and how many distinct programs the cache
holds, and writes ``benchmarks/results/compile_report.csv`` (one row per test, program and stage).
"""
import argparse
import json
from pathlib import Path

import pandas as pd


def read(folder: Path) -> pd.DataFrame:
    """The stages recorded under ``folder``: test, module, program, stage, seconds.

    A stage is ``trace`` (Python to a jaxpr; a jit traced inside another is counted in both), ``lower``
    (the jaxpr to StableHLO) or ``compile`` (XLA, or a load from the persistent cache); files written
    before stages were recorded hold compilations only."""
    rows = [json.loads(line) for path in sorted(folder.glob("*.jsonl")) for line in path.read_text().splitlines()
            if line.strip()]
    frame = pd.DataFrame(rows, columns=["test", "program", "stage", "seconds"])
    stage = frame.stage.astype(object).where(frame.stage.notna(), "compile")
    return frame.assign(stage=stage, module=frame.test.str.split("::").str[0])


def summarise(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Compilations and seconds by module, by test and by program, the costliest first: ``compilations``
    and ``seconds`` count XLA compilations; ``lower`` and ``trace`` are the seconds of those stages."""
    def by(column):
        compiled = frame[frame.stage == "compile"].groupby(column).seconds.agg(compilations="count", seconds="sum")
        other = frame[frame.stage != "compile"].pivot_table(index=column, columns="stage", values="seconds",
                                                            aggfunc="sum")
        table = compiled.join(other.reindex(columns=["lower", "trace"]), how="outer").fillna(0.0)
        table["compilations"] = table.compilations.astype(int)
        return table.sort_values("seconds", ascending=False).reset_index()

    return {"module": by("module"), "test": by("test"), "program": by("program")}


def distinct_programs(cache: Path) -> pd.Series:
    """Entries of a JAX persistent cache by program name (``jit_<name>-<hash>-cache`` files)."""
    names = [path.name.rsplit("-", 2)[0] for path in cache.glob("*-cache")]
    return pd.Series(names, dtype=str).value_counts()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="the MIXOPT_COMPILE_REPORT folder of a test run")
    parser.add_argument("--cache", type=Path, help="the run's MIXOPT_CACHE_DIR, to count distinct programs")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    frame = read(args.folder)
    if frame.empty:
        raise SystemExit(f"compile_report: no compilations recorded under {args.folder}")
    stages = frame.groupby("stage").seconds.sum()
    print(f"{(frame.stage == 'compile').sum()} compilations, {stages.get('compile', 0.0):.0f} s; lowering "
          f"{stages.get('lower', 0.0):.0f} s; tracing {stages.get('trace', 0.0):.0f} s (nested jits counted twice)")
    for name, table in summarise(frame).items():
        print(f"\nby {name}:\n{table.head(args.top).to_string(index=False, float_format=lambda v: f'{v:.1f}')}")
    if args.cache:
        print(f"\ndistinct programs in {args.cache}:\n{distinct_programs(args.cache).head(args.top).to_string()}")
    args.out.mkdir(parents=True, exist_ok=True)
    (frame.groupby(["module", "test", "program", "stage"]).seconds.agg(events="count", seconds="sum").reset_index()
     .to_csv(args.out / "compile_report.csv", index=False))


if __name__ == "__main__":
    main()
