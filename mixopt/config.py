"""Scenario (the world), Policy (the decisions) and RunConfig (Monte-Carlo settings).

Frozen dataclasses, validated at construction with the key and what is allowed in the message
(STYLE.md habit 7). They load from TOML (``tomllib``), from dicts and from CLI flags; flags override
the keys of the same name (DESIGN.md section 4).
"""
import dataclasses
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from mixopt.errors import ConfigError
from mixopt.names import FAMILIES, HUMAN_SOURCES, RETENTIONS, SAMPLERS
from mixopt.validate import (TEMPERED_FAMILIES, _budget, _choice, _flow, _fractions, _int, _number, _optional_int,
                             _temperatures)


PIPELINE_DEFAULTS = {"human_per_generation": math.inf, "train_size": None, "human_shelf_life": None}


@dataclass(frozen=True)
class Scenario:
    """The world: family and truth, horizon T, batch size M, human supply."""

    family: str = "gaussian"
    generations: int = 20
    samples: int = 1000
    human_budget: float = math.inf
    truth: dict = field(default_factory=dict)
    contamination: float | tuple[float, ...] = 0.0
    detector_tpr: float = 1.0
    detector_fpr: float = 0.0
    verifier_noise: float = 0.0
    # the pipeline's limits (DESIGN.md section 2): a flow of fresh human data, a training set of fixed
    # size, a shelf life for human samples; the defaults are no limit (and are left out of ``to_dict``)
    human_per_generation: float = math.inf
    train_size: int | None = None
    human_shelf_life: int | None = None

    def __post_init__(self):
        _choice("scenario.family", self.family, FAMILIES)
        _int("scenario.generations", self.generations, 1)
        _int("scenario.samples", self.samples, 2)
        if not isinstance(self.truth, dict):
            raise ConfigError(f"scenario.truth must be a table, got {self.truth!r}")
        object.__setattr__(self, "human_budget", _budget(self.human_budget, self.samples))
        object.__setattr__(self, "contamination",
                           _fractions("scenario.contamination", self.contamination, self.generations))
        for key in ("detector_tpr", "detector_fpr"):
            if isinstance(getattr(self, key), (list, tuple)):
                raise ConfigError(f"scenario.{key} must be a number in [0, 1], got {getattr(self, key)!r}")
            object.__setattr__(self, key, _fractions(f"scenario.{key}", getattr(self, key), 1))
        object.__setattr__(self, "human_per_generation", _flow(self.human_per_generation))
        _optional_int("scenario.train_size", self.train_size, 2)
        _optional_int("scenario.human_shelf_life", self.human_shelf_life, 1)
        if _number("scenario.verifier_noise", self.verifier_noise) < 0:
            raise ConfigError(f"scenario.verifier_noise must be a number >= 0, got {self.verifier_noise!r}")

    @property
    def limits(self) -> dict:
        """The pipeline limits set (``human_per_generation``, ``train_size``, ``human_shelf_life``)."""
        return {k: getattr(self, k) for k, default in PIPELINE_DEFAULTS.items() if getattr(self, k) != default}

    def schedule(self, key: str) -> list[float]:
        """``contamination`` as one value per generation 1..T."""
        value = getattr(self, key)
        return list(value) if isinstance(value, tuple) else [value] * self.generations


@dataclass(frozen=True)
class Policy:
    """The decisions for generations 1..T (DESIGN.md section 2). Validate with ``check(scenario)``."""

    human_fraction: float | tuple[float, ...] = 0.0
    human_weight: float | tuple[float, ...] | None = None
    human_source: str = "fresh"
    retention: str = "replace"
    window: int = 3
    age_weight: float = 0.5  # retention "age": a batch of age a weighs age_weight ** a
    provenance_filter: bool = False
    curation_fraction: float | tuple[float, ...] = 1.0
    temperature: float | tuple[float, ...] | None = None  # synthesis temperature; None: the family's own

    @property
    def curated(self) -> bool:
        """Whether a verifier curates synthetic data in some generation (a static switch)."""
        q = self.curation_fraction
        return any(v < 1 for v in (q if isinstance(q, tuple) else (q,)))

    @property
    def needs_samples(self) -> bool:
        """Whether the policy works on the samples themselves (the exact statistic sampler cannot)."""
        return self.retention == "subsample" or self.curated

    def check(self, scenario: Scenario) -> "Policy":
        """Returns the policy with lists made tuples; raises ConfigError naming the bad key."""
        num = scenario.generations
        fraction = _fractions("policy.human_fraction", self.human_fraction, num)
        weight = None if self.human_weight is None else _fractions("policy.human_weight", self.human_weight, num)
        _choice("policy.human_source", self.human_source, HUMAN_SOURCES)
        _choice("policy.retention", self.retention, RETENTIONS)
        _int("policy.window", self.window, 1)
        if isinstance(self.age_weight, (list, tuple)):
            raise ConfigError(f"policy.age_weight must be one number in [0, 1], got {self.age_weight!r}")
        age_weight = _fractions("policy.age_weight", self.age_weight, 1)
        if not isinstance(self.provenance_filter, bool):
            raise ConfigError(f"policy.provenance_filter must be true or false, got {self.provenance_filter!r}")
        if self.provenance_filter and self.retention == "subsample":
            raise ConfigError("policy.provenance_filter does not combine with retention subsample yet; "
                              "use replace, accumulate or window")
        curation = _fractions("policy.curation_fraction", self.curation_fraction, num)
        if min(curation if isinstance(curation, tuple) else (curation,)) <= 0:
            raise ConfigError(f"policy.curation_fraction must be in (0, 1] (the share of synthetic samples "
                              f"kept; 1 = no curation), got {self.curation_fraction!r}")
        if curation != 1.0 and self.retention == "subsample":
            raise ConfigError("policy.curation_fraction < 1 does not combine with retention subsample yet; "
                              "use replace, accumulate or window")
        temperature = None if self.temperature is None else _temperatures(self.temperature, num)
        if temperature is not None and scenario.family not in TEMPERED_FAMILIES:
            raise ConfigError(f"policy.temperature applies to families {', '.join(TEMPERED_FAMILIES)}, "
                              f"not {scenario.family!r}")
        if scenario.train_size is not None and (self.provenance_filter or curation != 1.0):
            raise ConfigError("scenario.train_size draws the training set sample by sample: it does not combine "
                              "with policy.provenance_filter or policy.curation_fraction < 1 yet")
        return dataclasses.replace(self, human_fraction=fraction, human_weight=weight, curation_fraction=curation,
                                   temperature=temperature, age_weight=age_weight)

    def schedule(self, key: str, num_generations: int) -> list[float]:
        """``human_fraction``, ``human_weight``, ``curation_fraction`` or ``temperature`` per generation 1..T."""
        value = getattr(self, key)
        return list(value) if isinstance(value, tuple) else [value] * num_generations


@dataclass(frozen=True)
class RunConfig:
    """Monte-Carlo settings: ``seeds`` repetitions from integer ``seed``; ``sampler`` None = exact where it applies."""

    seeds: int = 100
    seed: int = 0
    sampler: str | None = None

    def __post_init__(self):
        _int("run.seeds", self.seeds, 1)
        _int("run.seed", self.seed, 0)
        if self.sampler is not None:
            _choice("run.sampler", self.sampler, SAMPLERS)


@dataclass(frozen=True)
class Config:
    scenario: Scenario
    policy: Policy
    run: RunConfig
    # The policy keys the user set ([policy], a policy file, a flag): the constraints outside an optimised
    # space (``optimizers.constraints``). Not a table: ``to_dict`` leaves it out, ``from_dict`` takes it.
    fixed: frozenset = frozenset()

    @property
    def sampler(self) -> str:
        """The sampler in force: the one asked for, else ``exact`` where it applies."""
        if self.run.sampler is not None:
            return self.run.sampler
        return "naive" if self.needs_samples else "exact"

    @property
    def needs_samples(self) -> bool:
        """Whether the training set is drawn sample by sample (subsample, curation, a ``train_size``)."""
        return self.policy.needs_samples or self.scenario.train_size is not None

    def to_dict(self) -> dict:
        out = {name: dataclasses.asdict(getattr(self, name)) for name in TABLES}
        for key, default in PIPELINE_DEFAULTS.items():  # no limit: left out (a TOML has no None)
            if out["scenario"][key] == default:
                del out["scenario"][key]
        for table in out.values():
            for key, value in table.items():
                if isinstance(value, tuple):
                    table[key] = list(value)
                elif isinstance(value, float) and math.isinf(value):
                    table[key] = "inf"
        return out


TABLES = {"scenario": Scenario, "policy": Policy, "run": RunConfig}


def _make(table: str, values: dict):
    cls = TABLES[table]
    if not isinstance(values, dict):
        raise ConfigError(f"[{table}] must be a table, got {values!r}")
    allowed = [f.name for f in dataclasses.fields(cls)]
    for key in values:
        if key not in allowed:
            raise ConfigError(f"{table}.{key} is not a known key; allowed: {', '.join(allowed)}")
    return cls(**values)


def from_dict(data: dict, *, fixed=None) -> Config:
    """Builds and validates a Config from ``{"scenario": {...}, "policy": {...}, "run": {...}}``.

    ``fixed``: the policy keys the user set (``Config.fixed``); by default those the ``policy`` table
    holds. A config rebuilt from ``Config.to_dict`` (whose policy holds every key) passes its own.
    """
    for table in data:
        if table not in TABLES and table != "calibration":  # [calibration]: what mixopt calibrate fitted
            raise ConfigError(f"unknown table [{table}]; allowed: {', '.join(TABLES)}, calibration")
    scenario = _make("scenario", data.get("scenario", {}))
    policy = _make("policy", data.get("policy", {})).check(scenario)
    fixed = frozenset(data.get("policy", {}) if fixed is None else fixed)
    return Config(scenario, policy, _make("run", data.get("run", {})), fixed)


def read_file(path: str | Path) -> dict:
    """Reads a TOML (or, for policies, JSON) file into a dict; one-line ConfigError when it cannot."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror}") from None
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path}: malformed JSON: {err}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a JSON object")
        return data
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: malformed TOML: {err}") from None


def merge(base: dict, override: dict) -> dict:
    """Deep-merges ``override`` into a copy of ``base`` (tables merge, values replace)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def load(path: str | Path | None = None, *, policy_file: str | Path | None = None,
         overrides: dict | None = None) -> Config:
    """Config from a TOML file, then a policy file (a ``[policy]`` table or bare keys), then overrides."""
    data = read_file(path) if path else {}
    made_for = None
    if policy_file:
        policy = read_file(policy_file)
        made_for = policy.get("scenario") if isinstance(policy.get("scenario"), dict) else None
        policy = policy.get("policy", policy)
        data = merge(data, {"policy": policy})
    data = merge(data, overrides or {})
    if made_for is not None:
        _check_made_for(policy_file, made_for, data)
    return from_dict(data)


def _check_made_for(policy_file, made_for: dict, data: dict) -> None:
    """A policy file that says which scenario it was made for (``optimize``/``recommend`` JSON) must fit
    this one: the same family, and a per-generation list only for the same horizon."""
    scenario = data.get("scenario", {})
    family, theirs = scenario.get("family", "gaussian"), made_for.get("family", "gaussian")
    if family != theirs:
        raise ConfigError(f"policy file {policy_file} was made for family {theirs!r}, not {family!r}: "
                          "optimise or recommend for this scenario instead")
    lists = [k for k, v in data.get("policy", {}).items() if isinstance(v, list)]
    horizon, their_horizon = scenario.get("generations", 20), made_for.get("generations")
    if lists and their_horizon is not None and their_horizon != horizon:
        raise ConfigError(f"policy file {policy_file} gives {', '.join(lists)} per generation for T = {their_horizon} "
                          f"generations, this scenario has T = {horizon}: ask recommend or optimize for T = {horizon}")
