"""Simulated mean curves of a candidate world: the measurements' scenario with the fitted keys set to
candidate values, run under a run's policy on common random numbers (the same seeds for every
candidate, so that differences between candidates are not Monte-Carlo noise).

Traced keys (``measurements.TRACED_KEYS``: the synthesis temperature, the categorical Zipf exponent
and smoothing) enter the compiled program as values, so a search over them compiles once per
policy structure; so does the batch size M where it sizes only the arithmetic (``montecarlo.samples_as_value``:
the exact statistic sampler of a family that is not a count family); any other fitted key (M elsewhere, a
model size) compiles once per value.
"""
import json
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mixopt import montecarlo, runtime
from mixopt.calibration.measurements import Measurements
from mixopt.config import Config
from mixopt.families import make_family


class Curve(NamedTuple):
    mean: np.ndarray  # (T + 1,) mean over seeds
    var: np.ndarray  # (T + 1,) variance of that mean (Monte-Carlo error squared)
    per_seed: np.ndarray  # (seeds, T + 1): the Monte-Carlo errors of different points are correlated


class World:
    """The curves of ``measurements``' runs in candidate worlds, on ``seeds`` common seeds."""

    def __init__(self, measurements: Measurements, *, seeds: int, seed: int = 0, stream: int = 0):
        self.measurements = measurements
        self.seed, self.stream = seed, stream
        self.keys = montecarlo.seed_keys(seed, seeds, stream=stream)
        self.traced = tuple(k.name for k in measurements.fit if k.traced)
        self.fits_samples = any(k.name == "samples" for k in measurements.fit)
        self.simulations = 0  # seed-trajectories simulated (the cost)

    def curves(self, values: dict, policy: dict) -> dict[str, Curve]:
        """Metric name -> its mean curve over generations 0..T in world ``values`` under ``policy``.

        Raises:
          SimulationError: a metric is not finite (the candidate world degenerates).
        """
        config = self.measurements.config(values, policy, seeds=len(self.keys))
        as_value = self.fits_samples and montecarlo.samples_as_value(config)
        run = self._runner(config, as_value)
        inputs = montecarlo.sim_inputs(config)
        dtype = inputs.human_fraction.dtype
        if "temperature" in self.traced and config.policy.temperature is None:
            inputs = inputs._replace(temperature=jnp.full(config.scenario.generations, values["temperature"], dtype))
        theta = {k: jnp.asarray(values[k], dtype) for k in self.traced + ("samples",) * as_value if k != "temperature"}
        metrics = {name: np.asarray(v, np.float64) for name, v in run(self.keys, inputs, theta).items()}
        montecarlo.check_finite(metrics)
        self.simulations += len(self.keys)
        num = len(self.keys)
        return {name: Curve(v.mean(0), v.var(0, ddof=1) / num, v) for name, v in metrics.items()}

    def _runner(self, config: Config, as_value: bool):
        static_truth = {k: v for k, v in config.scenario.truth.items() if k not in self.traced}
        tempered = "temperature" in self.traced or config.policy.temperature is not None
        family, _, generations, samples, *rest = montecarlo.structure(config)
        key = (family, json.dumps(static_truth, sort_keys=True), generations, None if as_value else samples, *rest,
               tempered, self.traced)
        return _RUNNERS.get(key, lambda: _compile(config, static_truth, tempered))


_RUNNERS = runtime.Programs()  # one compiled program per structure per process (calibrations of one file share them)


def _compile(config: Config, static_truth: dict, tempered: bool):
    """``jit(vmap over seeds)`` of a rollout whose family is made from the traced values ``theta`` (and whose
    M is ``theta["samples"]`` where given)."""
    scenario = config.scenario

    def rollout(key, inputs, theta):
        truth = {**static_truth, **{k: v for k, v in theta.items() if k != "samples"}}
        family = make_family(scenario.family, truth, num_samples=scenario.samples)
        sim, _ = montecarlo.build(config, family=family, tempered=tempered, samples=theta.get("samples"))
        return sim.rollout(key, inputs).metrics

    return jax.jit(jax.vmap(rollout, in_axes=(0, None, None)))
