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
from mixopt.errors import ConfigError
from mixopt.objectives import Objective
from mixopt.optimize.policy_space import CONTINUOUS, with_policy
from mixopt.policies.schedules import SCHEDULES

OPTIMISERS = {"adam": optax.adam, "sgd": optax.sgd, "adamw": optax.adamw, "rmsprop": optax.rmsprop}
EDGE = 1e-3  # start values are clipped into [EDGE, 1 - EDGE] so their logits are finite


class GradientResult(NamedTuple):
    config: Config  # the scenario with the optimised policy
    losses: np.ndarray  # (steps,) signed objective per step (lower is better)
    evaluations: int  # simulator evaluations (seed-trajectories) used
    fraction_history: np.ndarray  # (steps, T) lambda schedule after each step
    weight_history: np.ndarray  # (steps, T) human weight after each step
    start: Config  # the policy the optimiser started from (its initial parameters, written back as a policy)


def _logit(value):
    value = np.clip(np.asarray(value, np.float64), EDGE, 1 - EDGE)
    return jnp.asarray(np.log(value) - np.log1p(-value))


def optimize_gradient(config: Config, objective: Objective, space: tuple[str, ...], *, steps: int = 200,
                      learning_rate: float = 0.05, seeds: int = 256, seed: int = 0,
                      optimizer: str = "adam") -> GradientResult:
    """Adam (by default) on the logits of the policy keys in ``space``.

    Raises:
      ConfigError: a structural key in ``space``, an unknown optimiser, or bad sizes.
    """
    structural = [k for k in space if k not in CONTINUOUS and k != "window"]
    if structural:
        raise ConfigError(f"method gradient optimises {', '.join(CONTINUOUS)} (and window) only, not "
                          f"{', '.join(structural)}; use --method optuna for structural keys")
    if "window" in space and config.policy.retention != "window":
        raise ConfigError("method gradient optimises the window length of retention window only; "
                          f"the config's retention is {config.policy.retention!r}: add --retention window")
    if optimizer not in OPTIMISERS:
        raise ConfigError(f"optimizer must be one of {', '.join(OPTIMISERS)}, got {optimizer!r}")
    for name, value in (("steps", steps), ("seeds", seeds)):
        if value < 1:
            raise ConfigError(f"--{name} must be >= 1, got {value}")
    num = config.scenario.generations
    if "human_weight" in space and config.policy.human_weight is None:
        config = with_policy(config, human_weight=0.5)
    if "curation_fraction" in space and not config.policy.curated:
        config = with_policy(config, curation_fraction=0.9)  # a curated simulator to differentiate
    if "temperature" in space and config.policy.temperature is None:  # start from the family's own
        config = with_policy(config, temperature=float(config.scenario.truth.get("temperature", 1.0)))
    sim, inputs = montecarlo.build(config, relaxed=True, soft_window="window" in space)
    level = float(np.mean(config.policy.schedule("human_fraction", num)))
    params = {}
    if "human_fraction" in space:
        params["fraction"] = _logit(level)
    if "human_fraction_schedule" in space:
        params["fraction"] = _logit(config.policy.schedule("human_fraction", num))
    schedule_key = next((k for k in space if k in SCHEDULES), None)
    if schedule_key:  # start from the constant schedule at the config's mean fraction (budget: even spread)
        schedule = SCHEDULES[schedule_key]
        start = {"start": _logit(level), "end": _logit(level), "rate": jnp.asarray(0.0)}
        params["schedule"] = {name: start[name] for name in schedule.params}
    if "human_weight" in space:
        params["weight"] = _logit(np.mean(config.policy.schedule("human_weight", num)))
    if "curation_fraction" in space:
        params["curation"] = _logit(np.mean(config.policy.schedule("curation_fraction", num)))
    if "temperature" in space:  # optimised as log tau: positive, and scale-free steps
        params["log_temperature"] = jnp.log(jnp.asarray(np.mean(config.policy.schedule("temperature", num))))
    if "window" in space:  # L = 1 + T sigmoid(z) in (1, T + 1): from replace to accumulate
        # from a tenth of a batch inside the ends: at 1 or T + 1 exactly the sigmoid is saturated
        # and the length would hardly move; rounded, the start is still the config's window
        params["window"] = _logit(np.clip(config.policy.window - 1, 0.1, num - 0.1) / num)

    def schedule_fraction(p):
        schedule = SCHEDULES[schedule_key]
        values = {k: jax.nn.sigmoid(v) if k in schedule.fractions else v for k, v in p["schedule"].items()}
        return jnp.clip(schedule.fn(values, config, jnp), 0.0, 1.0)

    def to_inputs(p):
        fraction = inputs.human_fraction
        if "fraction" in p:
            fraction = jnp.broadcast_to(jax.nn.sigmoid(p["fraction"]), (num,)).astype(fraction.dtype)
        if "schedule" in p:
            fraction = schedule_fraction(p).astype(fraction.dtype)
        changes = {"human_fraction": fraction}
        for name, key in (("weight", "human_weight"), ("curation", "curation_fraction")):
            if name in p:
                changes[key] = jnp.broadcast_to(jax.nn.sigmoid(p[name]), (num,)).astype(fraction.dtype)
        if "log_temperature" in p:
            changes["temperature"] = jnp.broadcast_to(jnp.exp(p["log_temperature"]), (num,)).astype(fraction.dtype)
        if "window" in p:
            changes["window"] = jnp.broadcast_to(1.0 + num * jax.nn.sigmoid(p["window"]), (num,)).astype(fraction.dtype)
        return inputs._replace(**changes)

    def write_back(final):
        """The policy keys of ``space`` from the simulator inputs ``final`` (rounded for a config)."""
        changes = {}
        if "human_fraction" in space:
            changes["human_fraction"] = round(float(final.human_fraction[0]), 6)
        if "human_fraction_schedule" in space or schedule_key:
            changes["human_fraction"] = [round(float(v), 6) for v in final.human_fraction]
        if "human_weight" in space:
            changes["human_weight"] = round(float(final.human_weight[0]), 6)
        if "curation_fraction" in space:
            changes["curation_fraction"] = round(max(float(final.curation_fraction[0]), EDGE), 6)
        if "temperature" in space:
            changes["temperature"] = round(float(final.temperature[0]), 6)
        if "window" in space:  # the exact semantic takes whole batches: the nearest integer length
            changes["window"] = int(np.clip(np.round(float(final.window[0])), 1, num + 1))
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
    params, (losses, fractions, weights) = train(params, jax.random.key(seed))
    losses = np.asarray(losses)
    if not np.all(np.isfinite(losses)):
        raise ConfigError(f"gradient optimisation diverged (non-finite objective at step "
                          f"{int(np.argmin(np.isfinite(losses)))}); lower --learning-rate")
    return GradientResult(with_policy(config, **write_back(to_inputs(params))), losses, steps * seeds,
                          np.asarray(fractions), np.asarray(weights),
                          with_policy(config, **write_back(to_inputs(start))))
