"""Objective values of a policy on fixed seeds for the search: one compiled program per policy
structure (new continuous values never recompile), and the robust variant over scenario variants."""
import numpy as np

from mixopt import montecarlo
from mixopt.config import Config
from mixopt.errors import SimulationError
from mixopt.objectives import Objective
from mixopt.progress import note


def _label(config: Config) -> str:
    return f"{config.scenario.family}, retention {config.policy.retention}, T = {config.scenario.generations}"


class Evaluator:
    """Objective values of a config on fixed seeds; one compiled program per policy structure."""

    def __init__(self, objectives: list[Objective], *, seeds: int, seed: int, compiled: dict | None = None):
        self.objectives, self.seeds, self.seed = objectives, seeds, seed
        self.compiled: dict = {} if compiled is None else compiled
        self.evaluations = 0

    def __call__(self, config: Config) -> tuple[list[float], dict]:
        structure = montecarlo.structure(config)
        if structure not in self.compiled:
            note(f"preparing the simulator for {_label(config)} (compiled once, then cached on disk)")
            self.compiled[structure] = montecarlo.runner(config)
        self.evaluations += self.seeds
        metrics = montecarlo.per_seed_metrics(config, montecarlo.seed_keys(self.seed, self.seeds),
                                              self.compiled[structure])
        return self._summarise(metrics)

    def _summarise(self, metrics: dict) -> tuple[list[float], dict]:
        """The objective values and the trial's user attributes."""
        values = [float(np.mean(o.value(metrics))) for o in self.objectives]
        return values, {"metrics_final": {name: float(v[:, -1].mean()) for name, v in metrics.items()}}

    def many(self, configs: list[Config]) -> list:
        """Each config's ``(values, summary)``, or its SimulationError. Configs of one structure run
        as one program, ``vmap`` over their policy inputs (the batch of an ask/tell round)."""
        import jax

        out: list = [None] * len(configs)
        groups: dict = {}
        for i, config in enumerate(configs):
            groups.setdefault(montecarlo.structure(config), []).append(i)
        keys = montecarlo.seed_keys(self.seed, self.seeds)
        for structure, members in groups.items():
            key = ("many", structure)
            if key not in self.compiled:
                self.compiled[key] = jax.jit(jax.vmap(montecarlo.runner(configs[members[0]]), in_axes=(None, 0)))
            stacked = jax.tree.map(lambda *xs: jax.numpy.stack(xs),
                                   *[montecarlo.sim_inputs(configs[i]) for i in members])
            info = self.compiled[key](keys, stacked)
            self.evaluations += self.seeds * len(members)
            for j, i in enumerate(members):
                metrics = {name: np.asarray(v[j], np.float64) for name, v in info.metrics.items()}
                try:
                    montecarlo.check_finite(metrics)
                    out[i] = self._summarise(metrics)
                except SimulationError as err:
                    out[i] = err
        return out


class RobustEvaluator(Evaluator):
    """The objective averaged over scenario variants (``--uncertain``): each policy is simulated in
    every variant on the same seeds; the trial records each variant's value (``variant_values``)."""

    def __init__(self, objectives: list[Objective], variants: list[Config], *, seeds: int, seed: int):
        super().__init__(objectives, seeds=seeds, seed=seed)
        self.variants = variants

    def __call__(self, config: Config) -> tuple[list[float], dict]:
        import dataclasses

        per_variant = []
        for i, variant in enumerate(self.variants):
            trial_config = dataclasses.replace(config, scenario=variant.scenario)
            structure = (i, montecarlo.structure(trial_config))
            if structure not in self.compiled:
                self.compiled[structure] = montecarlo.runner(trial_config)
            self.evaluations += self.seeds
            metrics = montecarlo.per_seed_metrics(trial_config, montecarlo.seed_keys(self.seed, self.seeds),
                                                  self.compiled[structure])
            per_variant.append([float(np.mean(o.value(metrics))) for o in self.objectives])
        values = np.mean(per_variant, axis=0).tolist()
        return values, {"variant_values": [v[0] for v in per_variant]}

    def many(self, configs: list[Config]) -> list:
        out = []
        for config in configs:
            try:
                out.append(self(config))
            except SimulationError as err:
                out.append(err)
        return out
