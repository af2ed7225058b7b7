"""From a Config to Monte-Carlo trajectories: build the simulator, vmap over seeds, jit, summarise.

This is the boundary where jitting happens (STYLE.md habit 5) and where non-finite values are
caught, once, outside the compiled code (habit 7).
"""
import functools
import json
from typing import TYPE_CHECKING, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mixopt.policies import retention as retention_rules
from mixopt.config import Config
from mixopt import runtime
from mixopt.errors import SimulationError
from mixopt.families import make_family
from mixopt.generation import SimInputs, Simulator, simulator

if TYPE_CHECKING:
    import pandas as pd


def build(config: Config, *, relaxed: bool = False, soft_window: bool = False, family=None,
          tempered: bool | None = None, samples=None) -> tuple[Simulator, SimInputs]:
    """The one-seed simulator of ``config`` and its dynamic inputs.

    ``family``: a family already made from the scenario (a calibration's, built from traced truth
    values) instead of making it; ``tempered``: take the synthesis temperature from the inputs even
    where the policy sets none (a fitted temperature).

    ``soft_window``: a ``window`` retention takes its length from ``inputs.window`` as a continuous
    value (``policies.soft_window``: at integer lengths the same as the window), so the gradient
    path can differentiate through it.

    ``samples``: M as a (traced) value, where ``samples_as_value(config)``: one program for every M.
    """
    scenario, policy = config.scenario, config.policy
    if samples is not None and not samples_as_value(config):
        raise ValueError("this structure's program depends on M: samples cannot be a value")
    if family is None:
        family = make_family(scenario.family, scenario.truth, num_samples=scenario.samples)
    retention = retention_rules.make(policy.retention, family, num_generations=scenario.generations,
                                     num_samples=scenario.samples, window_size=policy.window, soft=soft_window,
                                     train_size=scenario.train_size, shelf_life=scenario.human_shelf_life)
    sim = simulator(family, retention, num_generations=scenario.generations,
                    num_samples=scenario.samples, sampler=config.sampler,
                    human_source=policy.human_source, weighted=policy.human_weight is not None,
                    relaxed=relaxed, contaminated=any(c > 0 for c in scenario.schedule("contamination")),
                    provenance_filter=policy.provenance_filter, curated=policy.curated,
                    tempered=policy.temperature is not None if tempered is None else tempered,
                    shelf_life=scenario.human_shelf_life, samples=samples)
    return sim, sim_inputs(config)


def samples_as_value(config: Config) -> bool:
    """Whether M sizes only the arithmetic of ``config``'s program, so that it can enter as a value: the
    exact statistic sampler on fresh human data, no sample-level filter, and a family whose statistics do
    not depend on M (its factory takes no ``num_samples``: the count families size their samplers by it)."""
    import inspect

    from mixopt.families import REGISTRY

    s, p = config.scenario, config.policy
    return (config.sampler == "exact" and p.human_source == "fresh" and not p.needs_samples and s.train_size is None
            and "num_samples" not in inspect.signature(REGISTRY[s.family]).parameters)


def sim_inputs(config: Config) -> SimInputs:
    """The arrays a compiled simulation takes: new values of these never recompile."""
    num, policy = config.scenario.generations, config.policy
    weight = policy.schedule("human_weight", num) if policy.human_weight is not None else [0.0] * num
    dtype = jnp.result_type(float)  # float32, or float64 under jax_enable_x64
    scenario = config.scenario
    values = dict(
        human_fraction=policy.schedule("human_fraction", num), human_weight=weight,
        human_budget=scenario.human_budget, contamination=scenario.schedule("contamination"),
        detector_tpr=scenario.detector_tpr, detector_fpr=scenario.detector_fpr,
        curation_fraction=policy.schedule("curation_fraction", num), verifier_noise=scenario.verifier_noise,
        temperature=policy.schedule("temperature", num) if policy.temperature is not None else 1.0,
        window=float(policy.window), age_weight=policy.age_weight, human_flow=scenario.human_per_generation)
    # cast in numpy, moved in one device_put (one per leaf was about a tenth of an atlas build's time)
    return jax.device_put(SimInputs(**{name: np.asarray(value, dtype) for name, value in values.items()}))


def seed_keys(seed: int, num_seeds: int, *, stream: int = 0) -> jax.Array:
    """The per-seed keys of a run: the only place an integer seed becomes a key.

    ``stream`` > 0 gives an independent set of keys for the same integer seed (the optimiser
    searches on stream 0 and re-evaluates its result on fresh seeds from stream 1).
    """
    if seed < 2**31:  # one program; a larger seed overflows a jitted argument, and takes three eager ones
        return _keys(seed, num_seeds, stream)
    return _keys.__wrapped__(seed, num_seeds, stream)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _keys(seed, num_seeds, stream):
    """``seed_keys`` as one program (eagerly it was three: seed, fold, split)."""
    key = jax.random.key(seed)
    if stream:
        key = jax.random.fold_in(key, stream)
    return jax.random.split(key, num_seeds)


def batched(sim: Simulator, *, seeds_per_chunk: int | None = None):
    """``jit(vmap(simulate))`` over seeds: ``(keys, inputs) -> GenInfo`` with leaves (seeds, T + 1).

    Keep the returned function to reuse its compiled program: new ``inputs`` values never recompile.
    ``seeds_per_chunk`` vmaps that many seeds at a time and runs the chunks in sequence
    (``lax.map``), so a sample-level run's working set stays in cache instead of materialising
    seeds x M samples at once (measured 1.8x faster at M = 10^4, see benchmarks/simulate.py).
    """
    if seeds_per_chunk is None:
        return jax.jit(jax.vmap(sim.rollout, in_axes=(0, None)))

    def chunked(keys, inputs):
        return jax.lax.map(lambda key: sim.rollout(key, inputs), keys, batch_size=seeds_per_chunk)

    return jax.jit(chunked)


def seeds_per_chunk(config: Config) -> int | None:
    """Chunk size for sample-level runs (about 2^18 samples in flight); None (all at once) otherwise."""
    if config.sampler == "exact":
        return None
    family = make_family(config.scenario.family, config.scenario.truth, num_samples=config.scenario.samples)
    per_sample = jax.eval_shape(lambda key: family.noise(key, 1), jax.random.key(0)).size
    chunk = max(2, 2**18 // (config.scenario.samples * per_sample))
    return None if chunk >= config.run.seeds else chunk


def check_finite(metrics: dict) -> None:
    """Raises SimulationError naming the first metric and generation with a NaN or infinity."""
    first = {}  # metric -> first generation with a non-finite value in any seed
    for name, values in metrics.items():
        bad_generations = np.nonzero(~np.isfinite(np.asarray(values)).all(axis=0))[0]
        if bad_generations.size:
            first[name] = int(bad_generations[0])
    if not first:
        return
    generation = min(first.values())
    names = [name for name, g in first.items() if g == generation]
    values = np.asarray(metrics[names[0]])[:, generation]
    kind = "NaN" if np.isnan(values).any() else "infinite"
    raise SimulationError(f"metric {', '.join(names)} is {kind} at generation {generation} in "
                          f"{int((~np.isfinite(values)).sum())} of {values.size} seeds (the model degenerated: "
                          "more samples, fewer generations or more human data avoid it)")


_RUNNERS = runtime.Programs()  # (structure, seeds per chunk) -> runner: one traced program per structure per process


def runner(config: Config):
    """The compiled all-seeds simulation of ``config``'s structure: ``(keys, inputs) -> GenInfo``.

    Reusable for any config with the same structure (family, sizes, retention, window, source,
    sampler, weighted or not): only ``sim_inputs`` change between them. Kept per process, so every
    caller (the search, the evaluation, the baselines, a benchmark's parts) shares one program per
    structure instead of tracing it again.
    """
    chunk = seeds_per_chunk(config)
    return _RUNNERS.get((structure(config), chunk), lambda: batched(build(config)[0], seeds_per_chunk=chunk))


def structure(config: Config) -> tuple:
    """What fixes the compiled program (``runner``): configs that share it differ only in ``sim_inputs``."""
    p, s = config.policy, config.scenario
    return (s.family, json.dumps(s.truth, sort_keys=True), s.generations, s.samples,
            any(c > 0 for c in s.schedule("contamination")), p.retention, p.window if p.retention == "window" else 0,
            p.human_source, p.human_weight is not None, p.curated, p.provenance_filter, p.temperature is not None,
            config.sampler, s.train_size, s.human_shelf_life)


def per_seed_metrics(config: Config, keys: jax.Array, run=None) -> dict:
    """Metric name -> (seeds, T + 1) float64 array, checked finite (SimulationError otherwise).

    ``run`` is a ``runner`` of the same structure to reuse; a new one is compiled without it.
    """
    info = (run or runner(config))(keys, sim_inputs(config))
    metrics = {name: np.asarray(value, np.float64) for name, value in info.metrics.items()}
    check_finite(metrics)
    return metrics


class Result(NamedTuple):
    config: Config
    per_seed: dict  # metric -> (seeds, T + 1) numpy array

    @property
    def trajectory(self) -> "pd.DataFrame":
        """Long-format records (generation, metric, mean, std, seeds), made when asked: pandas is
        imported only by a caller that wants the frame (``mixopt simulate`` prints ``records``)."""
        return summarise(self.per_seed)


def simulate(config: Config, run=None) -> Result:
    """Runs ``config.run.seeds`` Monte-Carlo repetitions and summarises them per generation (``run``: a
    ``runner`` of the same structure to reuse)."""
    from mixopt.progress import Waiting

    s = config.scenario
    what = f"simulating {config.run.seeds} seeds x {s.generations + 1} generations ({s.family}, M = {s.samples})"
    with Waiting(what + " (compiling first where this process has not)", after=2.0):
        metrics = per_seed_metrics(config, seed_keys(config.run.seed, config.run.seeds), run)
    names = make_family(config.scenario.family, config.scenario.truth, num_samples=config.scenario.samples).metric_names + ("human_used",)
    per_seed = {name: metrics[name] for name in names}
    return Result(config, per_seed)


def summarise(per_seed: dict) -> "pd.DataFrame":
    """Long-format trajectory records (the README's trajectory format) as a frame."""
    import pandas as pd

    return pd.DataFrame(records(per_seed), columns=["generation", "metric", "mean", "std", "seeds"])


def records(per_seed: dict) -> list[dict]:
    """The trajectory records, plain Python numbers: mean and std (ddof 1; 0 with one seed) across seeds,
    metric by metric, generation by generation."""
    rows = []
    for name, values in per_seed.items():
        means = values.mean(axis=0)
        stds = values.std(axis=0, ddof=1) if len(values) > 1 else np.zeros_like(means)
        for generation, (mean, std) in enumerate(zip(means, stds)):
            rows.append({"generation": generation, "metric": name, "mean": float(mean), "std": float(std),
                         "seeds": int(values.shape[0])})
    return rows
