"""Start-up: a tiny ``mixopt simulate`` against JAX's own import, whole processes, warm compilation cache.

Issue 30's goal: ``mixopt simulate --generations 5 --samples 10 --seeds 10`` within 2x of
``python -c "import jax"``. Each round runs the reference (``import jax``), JAX's import with one array
op (the backend started), and the tiny simulate, in that order, so that a busy neighbour slows all of
them alike; the medians' ratio is the row. The cache is warmed first (one simulate, not counted), in
a folder of its own.

Run: ``python benchmarks/startup.py`` (``--rounds 9``); prints a table, writes
``benchmarks/results/startup.csv``.
"""
import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

COMMANDS = {
    "import jax": [sys.executable, "-c", "import jax"],
    "import jax + one op": [sys.executable, "-c", "import jax.numpy as jnp; jnp.zeros(1).block_until_ready()"],
    "mixopt simulate (tiny)": [sys.executable, "-m", "mixopt", "simulate", "--generations", "5", "--samples", "10",
                               "--seeds", "10", "--quiet"],
}


def seconds(command, env) -> float:
    """Whole-process wall seconds of ``command`` (it must succeed)."""
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure(rounds: int) -> pd.DataFrame:
    """Rows of (round, what, seconds), the commands interleaved round by round."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "MIXOPT_CACHE_DIR": str(Path(tmp) / "cache")}
        seconds(COMMANDS["mixopt simulate (tiny)"], env)  # warms the compilation cache
        rows = [{"round": r, "what": what, "seconds": seconds(command, env)}
                for r in range(rounds) for what, command in COMMANDS.items()]
    return pd.DataFrame(rows)


def summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Median and spread of each command, and its median's ratio to ``import jax``'s."""
    table = rows.groupby("what", sort=False).seconds.agg(median="median", low="min", high="max").reset_index()
    table["ratio_to_import_jax"] = table["median"] / table.loc[table.what == "import jax", "median"].iloc[0]
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    table = summary(measure(args.rounds)).assign(machine=platform.machine(), cpus=os.cpu_count())
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "startup.csv", index=False)


if __name__ == "__main__":
    main()
