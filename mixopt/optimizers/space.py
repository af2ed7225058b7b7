"""The policy keys an optimiser may change (``--space``): one table, ``KEYS``, that the search, the
gradient path and the baselines (``baselines.py``) read; policy <-> config plumbing. No JAX at import.
"""
import dataclasses
from typing import Callable, NamedTuple

import numpy as np

from mixopt.config import Config, Policy
from mixopt.errors import ConfigError
from mixopt.optimizers.allocation import (EDGE, _allocation_baseline, _allocation_forward, _allocation_init,
                                         _allocation_suggest, logit)
from mixopt.policies.schedules import SCHEDULES, schedule_values

# at most one: they set lambda_t
FRACTION_KEYS = ("human_fraction", "human_fraction_schedule", "human_allocation", *SCHEDULES)
CONTINUOUS = (*FRACTION_KEYS, "human_weight", "age_weight", "curation_fraction", "temperature")
STRUCTURAL = ("retention", "window", "human_source", "provenance_filter")
SPACE_KEYS = CONTINUOUS + STRUCTURAL

def parse_space(text: str | list) -> tuple[str, ...]:
    keys = [k.strip() for k in (text.split(",") if isinstance(text, str) else text) if k.strip()]
    for key in keys:
        if key not in SPACE_KEYS:
            raise ConfigError(f"space key {key!r} is unknown; allowed: {', '.join(SPACE_KEYS)}")
    fraction_keys = [k for k in keys if k in FRACTION_KEYS]
    if len(fraction_keys) > 1:
        raise ConfigError(f"space takes one of {', '.join(FRACTION_KEYS)} (each sets the human fraction), "
                          f"got {', '.join(fraction_keys)}")
    if not keys:
        raise ConfigError("space must name at least one policy key")
    return tuple(keys)


def with_policy(config: Config, **changes) -> Config:
    """``config`` with policy keys replaced, validated against its scenario."""
    policy = dataclasses.replace(config.policy, **changes).check(config.scenario)
    sampler = config.run.sampler
    if sampler == "exact" and (policy.needs_samples or config.scenario.train_size is not None):
        sampler = None  # exact does not apply there; let the default choose
    return dataclasses.replace(config, policy=policy, run=dataclasses.replace(config.run, sampler=sampler))


def policy_dict(policy: Policy) -> dict:
    """A ``[policy]`` table (lists for schedules), as ``mixopt simulate --policy`` reads it."""
    out = dataclasses.asdict(policy)
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in out.items() if v is not None}


def policy_changes(policy: dict) -> dict:
    """``with_policy`` arguments from a stored policy table (absent optional keys: the defaults)."""
    changes = dict(policy)
    changes.setdefault("human_weight", None)
    changes.setdefault("temperature", None)
    return changes


# ---------------------------------------------------------------------------------------------
# The table of optimisable keys (after dynamax's ParameterProperties): a new key is one row.
#
# Each row says how the Optuna search suggests the key (``suggest(trial, config, changes) -> policy
# changes``; ``changes`` holds the rows suggested before it, in table order), how a baseline policy
# is spelled in the search's parameters (``baseline(changes, config) -> trial params``), and, for
# the gradient path, how to make a config it can differentiate (``prepare``), the unconstrained
# start (``init(config) -> pytree`` of floats), the forward map to simulator inputs
# (``forward(p, config) -> SimInputs changes``, in ``jax.numpy``) and the write-back to a policy
# (``write_back(inputs, config) -> policy changes``, rounded). ``table`` says which config table
# the key lives in, so scenario keys can be rows too (calibration fits them).
# ---------------------------------------------------------------------------------------------
TEMPERATURE_RANGE = (0.5, 2.0)  # the synthesis temperatures a search considers (log-uniform)


class Key(NamedTuple):
    name: str
    suggest: Callable
    baseline: Callable
    init: Callable | None = None  # None: not on the gradient path
    forward: Callable | None = None
    write_back: Callable | None = None
    prepare: Callable = lambda config: config
    table: str = "policy"

    @property
    def differentiable(self) -> bool:
        return self.init is not None


def _sigmoid_per_generation(z, config):
    import jax
    import jax.numpy as jnp

    return jnp.broadcast_to(jax.nn.sigmoid(z), (config.scenario.generations,))


def _mean(config, key):
    return float(np.mean(config.policy.schedule(key, config.scenario.generations)))


def _constant(key):
    """A baseline's value of ``key`` where it has one (None: the family's own, not searchable)."""
    return lambda changes, config: {key: changes[key]} if changes.get(key) is not None else {}


def _schedule_row(name: str, schedule) -> Key:
    def suggest(trial, config, changes):
        params = {p: trial.suggest_float(f"{name}.{p}", *schedule.bounds[p]) for p in schedule.params}
        return {"human_fraction": schedule_values(name, params, config)}

    def baseline(changes, config):  # a constant fraction (the baseline's level): the budget cap does the rest
        level = changes["level"]
        spelled = {"human_fraction_linear": {"start": level, "end": level},
                   "human_fraction_decay": {"start": level, "rate": 0.0}}.get(name, {})
        return {f"{name}.{p}": v for p, v in spelled.items()}

    def init(config):  # the constant schedule at the config's mean fraction (budget: an even spread)
        level = logit(_mean(config, "human_fraction"))
        start = {"start": level, "end": level, "rate": 0.0}
        return {p: start[p] for p in schedule.params}

    def forward(p, config):
        import jax
        import jax.numpy as jnp

        values = {k: jax.nn.sigmoid(v) if k in schedule.fractions else v for k, v in p.items()}
        return {"human_fraction": jnp.clip(schedule.fn(values, config, jnp), 0.0, 1.0)}

    def write_back(inputs, config):
        return {"human_fraction": [round(float(v), 6) for v in inputs.human_fraction]}

    return Key(name, suggest, baseline, init, forward, write_back)


def _window_forward(z, config):  # L = 1 + T sigmoid(z) in (1, T + 1): from replace to accumulate
    import jax
    import jax.numpy as jnp

    num = config.scenario.generations
    return {"window": jnp.broadcast_to(1.0 + num * jax.nn.sigmoid(z), (num,))}


def _window_init(config):
    # from a tenth of a batch inside the ends: at 1 or T + 1 exactly the sigmoid is saturated and
    # the length would hardly move; rounded, the start is still the config's window
    num = config.scenario.generations
    return logit(np.clip(config.policy.window - 1, 0.1, num - 0.1) / num)


def _prepare(key, value_of):
    def prepare(config):
        return config if value_of(config) is None else with_policy(config, **{key: value_of(config)})
    return prepare


def _age_suggest(trial, config, changes):
    retention = changes.get("retention", config.policy.retention)
    if "retention" in changes and retention != "age":
        return {}
    if retention != "age" and "retention" in config.fixed:
        raise ConfigError(f"space key age_weight is the age rule's (retention age), but the retention is fixed "
                          f"to {retention!r}: drop age_weight from the space or the retention from the policy")
    return {"retention": "age", "age_weight": trial.suggest_float("age_weight", 0.0, 1.0)}


_NOT_SEARCHED = lambda changes, config: {}  # noqa: E731
_RETENTIONS = ["replace", "accumulate", "window", "subsample", "age"]

KEYS: dict[str, Key] = {row.name: row for row in [
    # structural keys: the search only, except the window's length, which relaxes (soft_window)
    Key("retention", lambda trial, config, changes: {"retention": trial.suggest_categorical("retention", _RETENTIONS)},
        _constant("retention")),
    Key("window", lambda trial, config, changes: {"window": trial.suggest_int("window", 1, config.scenario.generations)},
        _NOT_SEARCHED, _window_init, _window_forward,
        lambda inputs, config: {"window": int(np.clip(np.round(float(inputs.window[0])), 1,
                                                               config.scenario.generations + 1))}),
    Key("human_source", lambda trial, config, changes: {
        "human_source": trial.suggest_categorical("human_source", ["fresh", "pool"])}, _constant("human_source")),
    # the human fraction: one of these per space (each sets lambda_t)
    Key("human_fraction", lambda trial, config, changes: {"human_fraction": trial.suggest_float("human_fraction", 0.0, 1.0)},
        lambda changes, config: {"human_fraction": changes["level"]}, lambda config: logit(_mean(config, "human_fraction")),
        lambda z, config: {"human_fraction": _sigmoid_per_generation(z, config)},
        lambda inputs, config: {"human_fraction": round(float(inputs.human_fraction[0]), 6)}),
    Key("human_fraction_schedule", lambda trial, config, changes: {"human_fraction": [
        trial.suggest_float(generation_param(t, config), 0.0, 1.0) for t in range(1, config.scenario.generations + 1)]},
        lambda changes, config: {generation_param(t, config): v for t, v in enumerate(np.broadcast_to(
            changes["human_fraction"], (config.scenario.generations,)).tolist(), start=1)},
        lambda config: logit(config.policy.schedule("human_fraction", config.scenario.generations)),
        lambda z, config: {"human_fraction": _sigmoid_per_generation(z, config)},
        lambda inputs, config: {"human_fraction": [round(float(v), 6) for v in inputs.human_fraction]}),
    # the budget's free allocation over generations: shares (Dirichlet) and the share of it spent
    Key("human_allocation", _allocation_suggest, _allocation_baseline, _allocation_init, _allocation_forward,
        lambda inputs, config: {"human_fraction": [round(float(v), 6) for v in inputs.human_fraction]}),
    *[_schedule_row(name, schedule) for name, schedule in SCHEDULES.items()],
    Key("human_weight", lambda trial, config, changes: {"human_weight": trial.suggest_float("human_weight", 0.0, 1.0)},
        _constant("human_weight"), lambda config: logit(_mean(config, "human_weight")),
        lambda z, config: {"human_weight": _sigmoid_per_generation(z, config)},
        lambda inputs, config: {"human_weight": round(float(inputs.human_weight[0]), 6)},
        _prepare("human_weight", lambda config: 0.5 if config.policy.human_weight is None else None)),
    # the age rule's gamma (a batch of age a weighs gamma^a): the key implies retention "age", unless the
    # retention is searched too (then it is suggested where the trial's retention is "age")
    Key("age_weight", _age_suggest, _constant("age_weight"), lambda config: logit(config.policy.age_weight),
        lambda z, config: {"age_weight": _sigmoid_per_generation(z, config)},
        lambda inputs, config: {"age_weight": round(float(inputs.age_weight[0]), 6)},
        lambda config: config if config.policy.retention == "age" else with_policy(config, retention="age")),
    Key("temperature", lambda trial, config, changes: {
        "temperature": trial.suggest_float("temperature", *TEMPERATURE_RANGE, log=True)}, _constant("temperature"),
        # optimised as log tau: positive, and scale-free steps; from the family's own temperature
        lambda config: np.log(_mean(config, "temperature")),
        lambda z, config: {"temperature": _exp_per_generation(z, config)},
        lambda inputs, config: {"temperature": round(float(inputs.temperature[0]), 6)},
        _prepare("temperature", lambda config: float(config.scenario.truth.get("temperature", 1.0))
                 if config.policy.temperature is None else None)),
    # curation and the provenance filter need batch statistics: conditional on a non-subsample retention
    Key("curation_fraction", lambda trial, config, changes: {} if _subsample(config, changes) else {
        "curation_fraction": trial.suggest_float("curation_fraction", 0.05, 1.0)}, _NOT_SEARCHED,
        lambda config: logit(_mean(config, "curation_fraction")),
        lambda z, config: {"curation_fraction": _sigmoid_per_generation(z, config)},
        lambda inputs, config: {"curation_fraction": round(max(float(inputs.curation_fraction[0]), EDGE), 6)},
        _prepare("curation_fraction", lambda config: None if config.policy.curated else 0.9)),
    Key("provenance_filter", lambda trial, config, changes: {} if _subsample(config, changes) else {
        "provenance_filter": trial.suggest_categorical("provenance_filter", [False, True])}, _NOT_SEARCHED),
]}


def generation_param(t: int, config: Config) -> str:
    """The search parameter of generation t's human fraction, zero-padded so tools sort it in order
    (``human_fraction_01`` .. ``human_fraction_12``)."""
    return f"human_fraction_{t:0{max(2, len(str(config.scenario.generations)))}d}"


def _exp_per_generation(z, config):
    import jax.numpy as jnp

    return jnp.broadcast_to(jnp.exp(z), (config.scenario.generations,))


def _subsample(config, changes) -> bool:
    return changes.get("retention", config.policy.retention) == "subsample"


def suggest(trial, config: Config, space: tuple[str, ...]) -> Config:
    """The trial's policy: the config's policy with the ``space`` keys suggested (in table order)."""
    changes = {}
    for name, row in KEYS.items():
        if name == "curation_fraction" and _subsample(config, changes):
            changes.update(curation_fraction=1.0, provenance_filter=False)
        if name in space:
            changes.update(row.suggest(trial, config, changes))
    return with_policy(config, **changes)


assert set(KEYS) == set(SPACE_KEYS), "every --space key has a row"
