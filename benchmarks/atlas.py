"""The atlas build: wall time of ``mixopt atlas build`` over a grid, this checkout against a reference one.

Issue 30's goal: the constrained atlas (``--grid constrained``, five retention constraints, two
objective kinds: 160 entries) builds in no more wall time than the 36-entry default build did
(11 min 18 s). Each variant is a whole ``mixopt atlas build`` process with studies of its own (nothing
resumed) and one shared compilation cache, warmed first by a build of each variant (not counted): the
rows compare tracing, lowering, loading and running programs, not XLA compiling them. Rounds alternate
the variants, so a busy neighbour slows them alike.

``--reference PATH``: a checkout of the earlier code (``git worktree add /tmp/ref COMMIT``), run with
its own ``mixopt`` package and warmed by a build of its own first. Without it only this checkout runs.
``--reference-build ARGS``: the reference's own ``atlas build`` options (default: this checkout's), so
the goal's two builds can be timed in one run: ``--reference /tmp/ref40 --reference-build "--trials 24"``
times the 36-entry default build of 40f4fcd (the issue's 11 min 18 s) beside this checkout's 160 entries.
Each runs with its own defaults: a reference before 09f3057 evaluates every report on all ``--eval-seeds``,
this checkout stops at its ``--precision`` (the builds as a user runs them; ``--precision 0`` here passes
it to this checkout's build to compare equal work; ``--reference-build`` keeps the reference's own).

Run: ``python benchmarks/atlas.py --families gaussian --retentions free,replace,train-size --reference
/tmp/ref``; prints a table, writes ``benchmarks/results/atlas.csv``.
"""
import argparse
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def build(checkout: Path, options: list, folder: Path, env: dict) -> float:
    """Whole-process wall seconds of one atlas build from ``checkout`` into ``folder`` (fresh studies)."""
    command = [sys.executable, "-m", "mixopt", "atlas", "build", *options,
               "--storage", str(folder / "studies.log"), "--out", str(folder / "atlas.json"), "--quiet"]
    start = time.perf_counter()
    subprocess.run(command, env={**env, "PYTHONPATH": str(checkout)}, cwd=folder, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default="gaussian,categorical")
    parser.add_argument("--grid", default="constrained")
    parser.add_argument("--retentions", default="free,replace,window,accumulate,train-size")
    parser.add_argument("--objectives", default="final,mean")
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--reference", type=Path, help="a checkout of the earlier code")
    parser.add_argument("--reference-build", help="the reference's atlas build options, as one string "
                                                  "(default: the same as this checkout's)")
    parser.add_argument("--precision", type=float,
                        help="this checkout's atlas build --precision only (default: its own default)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    options = ["--families", args.families, "--grid", args.grid, "--retentions", args.retentions,
               "--objectives", args.objectives, "--trials", str(args.trials)]
    variants = [("this checkout", ROOT, options + (["--precision", str(args.precision)]
                                                   if args.precision is not None else []))]
    if args.reference:  # this checkout's options without --precision, which a reference before 09f3057 lacks
        theirs = shlex.split(args.reference_build) if args.reference_build is not None else options
        variants.insert(0, ("reference", args.reference.resolve(), theirs))
    rows, warm = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "MIXOPT_CACHE_DIR": str(Path(tmp) / "cache")}
        for name, checkout, chosen in variants:  # each variant's programs in the cache first, not counted
            (Path(tmp) / f"warm-{name}").mkdir()
            warm[name] = build(checkout, chosen, Path(tmp) / f"warm-{name}", env)
            print(f"{name}: warm-up build (cold cache, not counted): {warm[name]:.1f} s", file=sys.stderr)
        for r in range(args.rounds):
            for name, checkout, chosen in variants:
                folder = Path(tmp) / f"{r}-{len(rows)}"
                folder.mkdir()
                rows.append({"round": r, "variant": name, "options": " ".join(chosen),
                             "seconds": build(checkout, chosen, folder, env)})
                print(f"{name}: {rows[-1]['seconds']:.1f} s", file=sys.stderr)
    table = pd.DataFrame(rows).groupby(["variant", "options"], sort=False).seconds.median().reset_index()
    first = table.seconds.iloc[0]
    table = table.assign(ratio_to_first=table.seconds / first, warm_up_s=table.variant.map(warm),
                         machine=platform.machine(), cpus=os.cpu_count())
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "atlas.csv", index=False)


if __name__ == "__main__":
    main()
