"""Throughput of the simulator against two plain-numpy peers, and memory of long accumulate runs.

For M in {1e2, 1e4, 1e6}, T = 100, a univariate Gaussian (mle), lambda = 0.1 fresh human data and
retention replace / accumulate, it times, in this one process:
  - engine exact: mixopt with the statistic sampler, S = 1000 seeds (jit(vmap(scan))), after compilation;
  - engine naive: mixopt drawing every sample;
  - numpy loop: a Python loop over seeds and generations (how published collapse code does it);
  - numpy vectorised: one array op per generation across all seeds (the strongest plain peer).
Sample-level runs at large M would not fit in memory or minutes, so they use fewer seeds; every
method is compared by its cost per seed-generation (wall time / (seeds x T)). Compile time is
reported apart. Then the compiled memory of accumulate over T = 1000 generations at M = 1e4.
Then (``--part families`` alone) every family's cost per seed-generation at M = 1e3 and 1e5, T = 20,
exact and naive samplers, written to ``simulate_families.csv``.

Then (``--part counts``) the count families' exact sampler against numpy: categorical, V = 1000, a Zipf
truth, lambda = 0, replace, T = 99, S = 400, M in {1e3, 1e5}: mixopt's default (``count_sampler``
chooses inverse-CDF at M <= 10 V, Poisson counts topped up to M beyond), mixopt forced to V
conditional binomials (``jax.random.multinomial``, the sampler before issue 10) and numpy's
``Generator.multinomial`` on the (S, V) array once a generation; written to ``simulate_counts.csv`` with numpy's time over each engine's.

``--part prng`` alone: the naive Gaussian draw (M = 1e4, S = 1000, T = 20) under jax's threefry, rbg
and unsafe_rbg PRNGs and mixopt's counter-hash stream (``families.streams``, what the families draw
with) against numpy vectorised (``simulate_prng.csv``).

Run: ``python benchmarks/simulate.py`` (``--quick`` for a smoke run). Prints a table and writes
``benchmarks/results/simulate.csv`` and ``simulate_memory.csv`` (with machine and device names).
"""
import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pandas as pd

from mixopt import config as config_mod
from mixopt import montecarlo
from mixopt.families import streams

FRACTION = 0.1


# every family at its defaults but smaller trainers (per-generation cost, not collapse, is measured)
FAMILY_TRUTHS = {"gaussian": {}, "categorical": {"vocab": 1000}, "gmm": {"components": 5, "em_steps": 50},
                 "neural": {"train_steps": 100}, "regression": {"dim": 10}}


def engine(M, T, seeds, retention, sampler, repeats, family="gaussian", truth=None):
    cfg = config_mod.from_dict({"scenario": {"family": family, "generations": T, "samples": M, "truth": truth or {}},
                                "policy": {"human_fraction": FRACTION, "retention": retention},
                                "run": {"sampler": sampler, "seeds": seeds}})
    sim, inputs = montecarlo.build(cfg)
    keys = montecarlo.seed_keys(0, seeds)
    start = time.perf_counter()
    run = montecarlo.batched(sim, seeds_per_chunk=montecarlo.seeds_per_chunk(cfg))
    compiled = run.lower(keys, inputs).compile()
    compile_s = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(keys, inputs))
        times.append(time.perf_counter() - start)
    return statistics.median(times), compile_s


def numpy_loop(M, T, seeds, retention, rng):
    n_h = round(FRACTION * M)
    start = time.perf_counter()
    for _ in range(seeds):
        x = rng.standard_normal(M)
        mean, var = x.mean(), x.var()
        count, total, total_sq = M, x.sum(), (x * x).sum()
        for _ in range(T):
            x = np.concatenate([rng.standard_normal(n_h), mean + np.sqrt(var) * rng.standard_normal(M - n_h)])
            if retention == "replace":
                mean, var = x.mean(), x.var()
            else:  # running sums: the fair (O(1) memory) accumulate
                count, total, total_sq = count + M, total + x.sum(), total_sq + (x * x).sum()
                mean = total / count
                var = total_sq / count - mean**2
    return time.perf_counter() - start


def numpy_vectorised(M, T, seeds, retention, rng):
    n_h = round(FRACTION * M)
    start = time.perf_counter()
    x = rng.standard_normal((seeds, M))
    mean, var = x.mean(1), x.var(1)
    count, total, total_sq = M, x.sum(1), (x * x).sum(1)
    for _ in range(T):
        x = rng.standard_normal((seeds, M))
        x[:, n_h:] = mean[:, None] + np.sqrt(var)[:, None] * x[:, n_h:]
        if retention == "replace":
            mean, var = x.mean(1), x.var(1)
        else:
            count, total, total_sq = count + M, total + x.sum(1), total_sq + (x * x).sum(1)
            mean = total / count
            var = total_sq / count - mean**2
    return time.perf_counter() - start


def memory(T, M, seeds, sampler):
    cfg = config_mod.from_dict({"scenario": {"generations": T, "samples": M},
                                "policy": {"human_fraction": FRACTION, "retention": "accumulate"},
                                "run": {"sampler": sampler, "seeds": seeds}})
    sim, inputs = montecarlo.build(cfg)
    run = montecarlo.batched(sim, seeds_per_chunk=montecarlo.seeds_per_chunk(cfg))
    compiled = run.lower(montecarlo.seed_keys(0, seeds), inputs).compile()
    analysis = compiled.memory_analysis()
    total = sum(getattr(analysis, f) for f in ("argument_size_in_bytes", "output_size_in_bytes",
                                               "temp_size_in_bytes"))
    return total


def family_costs(quick: bool, out: Path) -> pd.DataFrame:
    """Per-generation cost of every family at two sizes, exact and naive samplers, replace."""
    T, S = (5, 20) if quick else (20, 100)
    sizes = (100, 10_000) if quick else (1000, 100_000)
    rows = []
    for family, truth in FAMILY_TRUTHS.items():
        for M in sizes:
            for sampler in ("exact", "naive"):
                seeds = S if sampler == "exact" else max(2, min(S, 10**6 // M))
                wall, compile_s = engine(M, T, seeds, "replace", sampler, repeats=3, family=family, truth=truth)
                rows.append({"family": family, "M": M, "sampler": sampler, "seeds": seeds, "T": T, "wall_s": wall,
                             "compile_s": compile_s, "us_per_seed_gen": 1e6 * wall / (seeds * T)})
                print(f"  {family:<12} M={M:>7} {sampler:<6} seeds={seeds:<4} {wall:8.3f} s", file=sys.stderr)
    table = pd.DataFrame(rows)
    exact = table[table.sampler == "exact"].set_index(["family", "M"])["us_per_seed_gen"]
    table["naive_over_exact"] = [u / exact[(f, m)] for f, m, u in zip(table.family, table.M, table.us_per_seed_gen)]
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    out.mkdir(parents=True, exist_ok=True)
    table.assign(machine=platform.node(), device=str(jax.devices()[0])).to_csv(out / "simulate_families.csv",
                                                                               index=False)
    return table


def count_costs(quick: bool, out: Path) -> pd.DataFrame:
    """The categorical family's exact count sampler against numpy's multinomial, in this process."""
    from mixopt.families.categorical import categorical, sampling_probs, zipf_probs
    from mixopt.families.counts import count_sampler
    from mixopt.generation import SimInputs, simulator
    from mixopt.policies.retention import replace

    V, T, S = 1000, (9 if quick else 99), (40 if quick else 400)
    rows = []
    for M in ((1000,) if quick else (1000, 100_000)):
        family = categorical(vocab=V, zipf=1.1, num_samples=M)
        binomials = count_sampler(V, None, method="binomials")  # the sampler before issue 10, for the ratio
        variants = {f"engine {count_sampler(V, M).method}": family, "engine binomials": family._replace(
            sample_stats=lambda key, params, count: binomials(key, count, sampling_probs(params)))}
        inputs = SimInputs(np.zeros(T), np.zeros(T), np.asarray(np.inf))
        keys = montecarlo.seed_keys(0, S)
        for name, fam in variants.items():
            run = montecarlo.batched(simulator(fam, replace(), num_generations=T, num_samples=M))
            start = time.perf_counter()
            compiled = run.lower(keys, inputs).compile()
            compile_s = time.perf_counter() - start
            times = []
            for _ in range(3):
                start = time.perf_counter()
                jax.block_until_ready(compiled(keys, inputs))
                times.append(time.perf_counter() - start)
                if times[-1] > 10:  # slow enough that one run is a stable measure
                    break
            rows.append({"M": M, "method": name, "seeds": S, "T": T, "wall_s": statistics.median(times),
                         "compile_s": compile_s})
        rng = np.random.default_rng(0)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            p = np.tile(zipf_probs(V, 1.1), (S, 1))
            for _ in range(T + 1):
                p = rng.multinomial(M, p) / M
            times.append(time.perf_counter() - start)
        rows.append({"M": M, "method": "numpy multinomial", "seeds": S, "T": T, "wall_s": statistics.median(times),
                     "compile_s": float("nan")})
        for row in rows[-len(variants) - 1:]:
            print(f"  M={M:>7} {row['method']:<22} {row['wall_s']:8.3f} s", file=sys.stderr)
    table = pd.DataFrame(rows)
    ref = table[table.method == "numpy multinomial"].set_index("M")["wall_s"]
    table["numpy_over_engine"] = [ref[m] / w for m, w in zip(table.M, table.wall_s)]
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    out.mkdir(parents=True, exist_ok=True)
    table.assign(machine=platform.node(), device=str(jax.devices()[0])).to_csv(out / "simulate_counts.csv",
                                                                               index=False)
    return table


def prng_costs(quick: bool, out: Path) -> pd.DataFrame:
    """The naive Gaussian path's draw under each jax PRNG implementation against numpy, in this process:
    S chains of T generations, M = 1e4 normals a generation (10% truth, 90% the fitted model), float32.
    The rbg implementations get their key from threefry bits once a generation (``wrap_key_data``)."""
    S, M, T = (100, 10_000, 5) if quick else (1000, 10_000, 20)

    def normals(impl):
        if impl == "threefry":
            return lambda key, shape: jax.random.normal(key, shape, np.float32)
        if impl == "stream":
            return lambda key, shape: streams.normal(key, shape, np.float32)
        return lambda key, shape: jax.random.normal(
            jax.random.wrap_key_data(jax.random.bits(key, (4,), np.uint32), impl=impl), shape, np.float32)

    def chains(noise):
        def chain(key):
            def step(carry, key_t):
                mean, var = carry
                z = noise(key_t, (M,))
                x = jax.numpy.where(jax.numpy.arange(M) < M // 10, z, mean + jax.numpy.sqrt(var) * z)
                return (x.mean(), x.var()), None
            return jax.lax.scan(step, (np.float32(0), np.float32(1)), jax.random.split(key, T))[0]
        return jax.jit(jax.vmap(chain))

    keys = jax.random.split(jax.random.key(0), S)
    rows = []
    for label, impl in (("jax threefry", "threefry"), ("jax rbg", "rbg"), ("jax unsafe_rbg", "unsafe_rbg"),
                        ("mixopt stream", "stream")):
        run = chains(normals(impl))
        jax.block_until_ready(run(keys))
        start = time.perf_counter()
        jax.block_until_ready(run(keys))
        rows.append({"method": label, "wall_s": time.perf_counter() - start})
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    mean, var = np.zeros((S, 1), np.float32), np.ones((S, 1), np.float32)
    for _ in range(T):
        x = rng.standard_normal((S, M), dtype=np.float32)
        x[:, M // 10:] = mean + np.sqrt(var) * x[:, M // 10:]
        mean, var = x.mean(1, keepdims=True), x.var(1, keepdims=True)
    rows.append({"method": "numpy vectorised", "wall_s": time.perf_counter() - start})
    table = pd.DataFrame(rows).assign(seeds=S, M=M, T=T)
    table["speedup_vs_numpy"] = table.wall_s.iloc[-1] / table.wall_s
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    out.mkdir(parents=True, exist_ok=True)
    table.assign(machine=platform.node(), device=str(jax.devices()[0])).to_csv(out / "simulate_prng.csv", index=False)
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--part", choices=("all", "gaussian", "families", "counts", "prng"), default="all",
                        help="gaussian: engine vs numpy peers and memory; families: every family's cost; "
                             "counts: the count sampler vs numpy's multinomial; prng: the naive draw "
                             "under each jax PRNG implementation")
    args = parser.parse_args(argv)
    if args.part == "prng":
        prng_costs(args.quick, Path(args.out))
        return
    if args.part in ("all", "counts"):
        count_costs(args.quick, Path(args.out))
        if args.part == "counts":
            return
    if args.part in ("all", "families"):
        family_costs(args.quick, Path(args.out))
        if args.part == "families":
            return
    T, S = (10, 100) if args.quick else (100, 1000)
    sizes = [100, 10_000] if args.quick else [100, 10_000, 1_000_000]
    sample_budget = 10**6 if args.quick else 10**7  # seeds x M for sample-level runs
    loop_budget = 2 * 10**4 if args.quick else 2 * 10**5
    rng = np.random.default_rng(0)
    device = jax.devices()[0]
    rows = []
    for M in sizes:
        for retention in ("replace", "accumulate"):
            seeds = {"engine exact": S, "engine naive": max(2, min(S, sample_budget // M)),
                     "numpy vectorised": max(2, min(S, sample_budget // M)),
                     "numpy loop": max(2, min(S, loop_budget // M))}
            for method, n in seeds.items():
                compile_s = float("nan")
                if method.startswith("engine"):
                    wall, compile_s = engine(M, T, n, retention, method.split()[1], repeats=3)
                elif method == "numpy loop":
                    wall = numpy_loop(M, T, n, retention, rng)
                else:
                    wall = numpy_vectorised(M, T, n, retention, rng)
                rows.append({"M": M, "retention": retention, "method": method, "seeds": n, "T": T,
                             "wall_s": wall, "compile_s": compile_s, "us_per_seed_gen": 1e6 * wall / (n * T)})
                print(f"  M={M:>7} {retention:<10} {method:<16} seeds={n:<5} {wall:8.3f} s", file=sys.stderr)
    table = pd.DataFrame(rows)
    ref = table[table.method == "numpy vectorised"].set_index(["M", "retention"])["us_per_seed_gen"]
    table["speedup_vs_vectorised"] = [ref[(m, r)] / u for m, r, u in
                                      zip(table.M, table.retention, table.us_per_seed_gen)]
    table["machine"] = platform.node()
    table["device"] = f"{device.platform}:{device.device_kind}"
    pd.set_option("display.width", 200)
    print(table.drop(columns=["machine"]).to_string(index=False, float_format=lambda v: f"{v:.4g}"))

    mem_T, mem_M = (100, 1000) if args.quick else (1000, 10_000)
    mem_rows = []
    for sampler, seeds in (("exact", S), ("naive", max(2, min(S, sample_budget // mem_M)))):
        used = memory(mem_T, mem_M, seeds, sampler)
        raw = mem_T * mem_M * seeds * 4  # what keeping every sample as float32 would take
        mem_rows.append({"retention": "accumulate", "T": mem_T, "M": mem_M, "sampler": sampler, "seeds": seeds,
                         "compiled_bytes": used, "compiled_MiB": used / 2**20, "raw_samples_MiB": raw / 2**20})
    mem = pd.DataFrame(mem_rows)
    print(mem.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "simulate.csv", index=False)
    mem.assign(machine=platform.node()).to_csv(out / "simulate_memory.csv", index=False)
    print(f"wrote {out / 'simulate.csv'} and {out / 'simulate_memory.csv'}", file=sys.stderr)


if __name__ == "__main__":
    main()
