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
from typing import Any

from mixopt.errors import ConfigError
from mixopt.names import FAMILIES, HUMAN_SOURCES, RETENTIONS, SAMPLERS


def _int(where: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{where} must be an integer >= {minimum}, got {value!r}")
    return value


def _number(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ConfigError(f"{where} must be a number, got {value!r}")
    return float(value)


def _choice(where: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"{where} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _fractions(where: str, value: Any, num_generations: int) -> float | tuple[float, ...]:
    """A fraction in [0, 1], or a list of one per generation 1..T."""
    if isinstance(value, (list, tuple)):
        if len(value) != num_generations:
            raise ConfigError(f"{where} must have one value per generation 1..{num_generations} "
                              f"({num_generations} values), got {len(value)}")
        return tuple(_fractions(f"{where}[{i}]", v, num_generations) for i, v in enumerate(value))
    number = _number(where, value)
    if not 0.0 <= number <= 1.0:
        raise ConfigError(f"{where} must be in [0, 1], got {value!r}")
    return number


TEMPERED_FAMILIES = ("gaussian", "categorical", "gmm", "neural")  # whose models sample at a temperature


def _temperatures(value: Any, num_generations: int) -> float | tuple[float, ...]:
    """A sampling temperature > 0, or a list of one per generation 1..T."""
    if isinstance(value, (list, tuple)):
        if len(value) != num_generations:
            raise ConfigError(f"policy.temperature must have one value per generation 1..{num_generations} "
                              f"({num_generations} values), got {len(value)}")
        return tuple(_temperatures(v, num_generations) for v in value)
    number = _number("policy.temperature", value)
    if not 0.0 < number < math.inf:
        raise ConfigError(f"policy.temperature must be a number > 0, got {value!r}")
    return number


def _budget(value: Any, num_samples: int) -> float:
    if isinstance(value, str) and value.strip().lower() in ("inf", "infinite", "infinity"):
        return math.inf
    number = _number("scenario.human_budget", value)
    if number < num_samples:
        raise ConfigError(f"scenario.human_budget must be >= scenario.samples ({num_samples}: generation 0 "
                          f"trains on that many human samples) or \"inf\", got {value!r}")
    return number


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
        if _number("scenario.verifier_noise", self.verifier_noise) < 0:
            raise ConfigError(f"scenario.verifier_noise must be a number >= 0, got {self.verifier_noise!r}")

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
        return dataclasses.replace(self, human_fraction=fraction, human_weight=weight, curation_fraction=curation,
                                   temperature=temperature)

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
        return "naive" if self.policy.needs_samples else "exact"

    def to_dict(self) -> dict:
        out = {name: dataclasses.asdict(getattr(self, name)) for name in TABLES}
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
