"""Small helpers shared by the tests (instead of a test dependency)."""
import contextlib
import dataclasses
import logging

import jax
import numpy as np

from mixopt import config as config_mod
from mixopt import montecarlo, runtime


def tree_allclose(a, b, **tol) -> bool:
    leaves_a, tree_a = jax.tree.flatten(a)
    leaves_b, tree_b = jax.tree.flatten(b)
    return tree_a == tree_b and all(np.allclose(x, y, **tol) for x, y in zip(leaves_a, leaves_b))


class _Count(logging.Handler):
    def __init__(self):
        super().__init__()
        self.count = 0

    def emit(self, record):
        if "Compiling" in record.getMessage() or "compiling" in record.getMessage():
            self.count += 1


@contextlib.contextmanager
def count_compilations():
    """Counts XLA compilations inside the block (JAX logs each one when ``jax_log_compiles``)."""
    handler = _Count()
    logger = logging.getLogger("jax")
    logger.addHandler(handler)
    previous = jax.config.jax_log_compiles
    jax.config.update("jax_log_compiles", True)
    try:
        yield handler
    finally:
        jax.config.update("jax_log_compiles", previous)
        logger.removeHandler(handler)


TRUTH_FIRST = {"temperature"}  # a truth key and a policy key: by name it means the truth's; policy_temperature the policy's


def run(seeds: int = 1000, seed: int = 0, sampler=None, **keys):
    """Per-seed metrics of a config given as flat keys (scenario/policy/run/truth keys by name)."""
    tables = {"scenario": {}, "policy": {}, "run": {"seeds": seeds, "seed": seed, "sampler": sampler}}
    policy_keys = {f.name for f in dataclasses.fields(config_mod.Policy)}
    scenario_keys = {f.name for f in dataclasses.fields(config_mod.Scenario)}
    for key, value in keys.items():
        if key.startswith("policy_"):
            tables["policy"][key.removeprefix("policy_")] = value
        elif key in TRUTH_FIRST:
            tables["scenario"].setdefault("truth", {})[key] = value
        elif key in scenario_keys:
            tables["scenario"][key] = value
        elif key in policy_keys:
            tables["policy"][key] = value
        else:  # a family parameter: [scenario.truth]
            tables["scenario"].setdefault("truth", {})[key] = value
    config = config_mod.from_dict(tables)
    program = _RUNS.get(montecarlo.structure(config), lambda: montecarlo.batched(montecarlo.build(config)[0]))
    info = program(montecarlo.seed_keys(seed, seeds), montecarlo.sim_inputs(config))
    return {name: np.asarray(value) for name, value in info.metrics.items()}


# run's programs by structure (all seeds at once, no chunks), so that a test module calling it again on one
# structure traces and lowers it once; released with the module's other programs (conftest.py)
_RUNS = runtime.Programs()


def z_score(samples, predicted):
    """(mean - predicted) / standard error of the mean, per trailing index."""
    samples = np.asarray(samples, np.float64)
    return (samples.mean(axis=0) - predicted) / (samples.std(axis=0, ddof=1) / np.sqrt(samples.shape[0]))


def two_sample_z(a, b):
    """Difference of two independent Monte-Carlo means in units of its standard error."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    se = np.sqrt(a.var(axis=0, ddof=1) / a.shape[0] + b.var(axis=0, ddof=1) / b.shape[0])
    return (a.mean(axis=0) - b.mean(axis=0)) / se


def paired_z(grads, diffs):
    """Mean of the per-seed differences over its standard error: the two share their keys (common
    random numbers, correlation 0.97-0.99), so the SE of the difference is that of the paired
    differences, 6-10x narrower than if they were independent."""
    gap = grads - diffs
    return gap.mean() / (gap.std(ddof=1) / np.sqrt(len(gap)))


def assert_paired_agreement(grads, diffs, off=0.2):
    z = paired_z(grads, diffs)
    assert abs(z) < 4, (grads.mean(), diffs.mean(), z)
    # power: a gradient ``off`` too small is rejected on the same draws
    assert abs(paired_z((1 - off) * grads, diffs)) > 4, paired_z((1 - off) * grads, diffs)
