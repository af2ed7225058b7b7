"""Gradient optimisation of the continuous policy through the relaxed simulator (optax).

Fractions are optimised as logits (STYLE.md habit 6); each step draws fresh seeds, so the loop is
stochastic gradient descent on the expected objective; the whole training loop is one ``lax.scan``
jitted once.
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mixopt import montecarlo
from mixopt.config import Config
from mixopt.errors import ConfigError, SimulationError
from mixopt.objectives import Objective
from mixopt.progress import Waiting
from mixopt.optimizers.baselines import baseline_configs, budget_matched
from mixopt.optimizers.space import FRACTION_KEYS, KEYS, with_policy

OPTIMISERS = {"adam": optax.adam, "sgd": optax.sgd, "adamw": optax.adamw, "rmsprop": optax.rmsprop}


class GradientResult(NamedTuple):
    config: Config  # the scenario with the optimised policy
    losses: np.ndarray  # (steps,) signed objective per step (lower is better)
    evaluations: int  # simulator evaluations (seed-trajectories) used
    fraction_history: np.ndarray  # (steps, T) lambda schedule after each step
    weight_history: np.ndarray  # (steps, T) human weight after each step
    start: Config  # the policy the optimiser started from (its initial parameters, written back as a policy)


def _check(config: Config, space: tuple[str, ...], steps: int, seeds: int, optimizer: str) -> None:
    not_differentiable = [k for k in space if not KEYS[k].differentiable]
    if not_differentiable:
        names = ", ".join(k for k, row in KEYS.items() if row.differentiable)
        raise ConfigError(f"method gradient optimises {names} only, not {', '.join(not_differentiable)}; "
                          "use method optuna for structural keys")
    if "window" in space and config.policy.retention != "window":
        raise ConfigError("method gradient optimises the window length of retention window only; "
                          f"the config's retention is {config.policy.retention!r}: set policy.retention = window")
    if optimizer not in OPTIMISERS:
        raise ConfigError(f"optimizer must be one of {', '.join(OPTIMISERS)}, got {optimizer!r}")
    for name, value in (("steps", steps), ("seeds", seeds)):
        if value < 1:
            raise ConfigError(f"{name} must be >= 1, got {value}")


def optimize_gradient(config: Config, objective: Objective, space: tuple[str, ...], *, steps: int = 200,
                      learning_rate: float = 0.05, seeds: int = 256, seed: int = 0,
                      optimizer: str = "adam") -> GradientResult:
    """Adam (by default) on the unconstrained parameters of the policy keys in ``space``
    (``space.KEYS``: logits of fractions, log temperature, the window's logit length).

    Raises:
      ConfigError: a structural key in ``space``, an unknown optimiser, or bad sizes.
      SimulationError: the optimisation diverged (a non-finite objective).
    """
    _check(config, space, steps, seeds, optimizer)
    rows = [KEYS[k] for k in space]
    for row in rows:
        config = row.prepare(config)  # e.g. a curated simulator to differentiate
    sim, inputs = montecarlo.build(config, relaxed=True, soft_window="window" in space)
    dtype = inputs.human_fraction.dtype
    params = {row.name: jax.tree.map(jnp.asarray, row.init(config)) for row in rows}

    def to_inputs(p):
        changes = {}
        for row in rows:
            changes.update(row.forward(p[row.name], config))
        return inputs._replace(**{k: v.astype(dtype) for k, v in changes.items()})

    def write_back(final):
        """The policy keys of ``space`` from the simulator inputs ``final`` (rounded for a config)."""
        changes = {}
        for row in rows:
            changes.update(row.write_back(final, config))
        return changes

    def loss_fn(p, key):
        info = jax.vmap(sim.rollout, in_axes=(0, None))(jax.random.split(key, seeds), to_inputs(p))
        return jnp.mean(objective.loss(info.metrics))

    # Cosine-decayed steps: the last iterates of a stochastic gradient settle instead of jittering.
    # A seed whose relaxed sample count crosses 1 (a chi-square or gamma of vanishing shape) can
    # give an infinite pathwise gradient: such steps are zeroed and the rest clipped, so one seed
    # cannot throw the policy out of range.
    opt = optax.chain(optax.zero_nans(), optax.clip_by_global_norm(10.0),
                      OPTIMISERS[optimizer](optax.cosine_decay_schedule(learning_rate, steps)))

    def train_step(carry, key):
        p, opt_state = carry
        loss, grads = jax.value_and_grad(loss_fn)(p, key)
        updates, opt_state = opt.update(grads, opt_state, p)
        p = optax.apply_updates(p, updates)
        current = to_inputs(p)
        return (p, opt_state), (loss, current.human_fraction, current.human_weight)

    @jax.jit
    def train(p, key):
        (p, _), history = jax.lax.scan(train_step, (p, opt.init(p)), jax.random.split(key, steps))
        return p, history

    start = params
    with Waiting(f"gradient: {steps} steps of {seeds} seeds (compiling, then running)"):
        params, (losses, fractions, weights) = train(params, jax.random.key(seed))
        losses = np.asarray(losses)
    if not np.all(np.isfinite(losses)):
        raise SimulationError(f"gradient optimisation diverged (non-finite objective at step "
                              f"{int(np.argmin(np.isfinite(losses)))}); lower the learning rate")
    return GradientResult(with_policy(config, **write_back(to_inputs(params))), losses, steps * seeds,
                          np.asarray(fractions), np.asarray(weights),
                          with_policy(config, **write_back(to_inputs(start))))


INTERIOR = 0.05  # a start's fractions are pulled into [0.05, 0.95]: at 0 or 1 the logit's gradient vanishes
SATURATED = 0.005  # a fraction that ends within this of 0 or 1 sits where its gradient vanishes


def gradient_start(config: Config, objective: Objective, space: tuple[str, ...], *, seeds: int, seed: int,
                   constraints: dict | None = None) -> Config:
    """Where the gradient path starts: of the config's policy and the budget-matched heuristics of its
    retention, each with its human fractions pulled inside [INTERIOR, 1 - INTERIOR], the best on the
    search's seeds. Only the fraction moves (the other keys stay the config's); without a fraction key
    in ``space``, the config itself."""
    from mixopt.optimizers.evaluators import Evaluator

    if not any(key in FRACTION_KEYS for key in space):
        return config
    num = config.scenario.generations
    schedules = [config.policy.schedule("human_fraction", num)]
    schedules += [c.policy.schedule("human_fraction", num) for name, c in baseline_configs(config, constraints).items()
                  if budget_matched(name) and c.policy.retention == config.policy.retention]
    candidates = [with_policy(config, human_fraction=[float(v) for v in np.clip(s, INTERIOR, 1 - INTERIOR)])
                  for s in schedules]
    results = Evaluator([objective], seeds=seeds, seed=seed).many(candidates)
    sign = 1.0 if objective.direction == "minimize" else -1.0
    scored = [(sign * r[0][0], i) for i, r in enumerate(results) if not isinstance(r, Exception)]
    return candidates[min(scored)[1]] if scored else config


def saturated_keys(config: Config, space: tuple[str, ...]) -> list[str]:
    """The fraction keys of ``space`` whose result ended within SATURATED of 0 or 1 in some generation."""
    values = np.asarray(config.policy.schedule("human_fraction", config.scenario.generations))
    near_edge = bool(np.any((values < SATURATED) | (values > 1 - SATURATED)))
    return [key for key in space if key in FRACTION_KEYS and near_edge]
