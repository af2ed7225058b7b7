"""A measurements file (DESIGN.md section 4, ``mixopt calibrate``): observed runs of a user's own
pipeline, the policy that produced each, per-generation values of the metrics, and which scenario
keys are known and which are fitted (with ranges).

Everything is checked here, before JAX is imported, with one line naming the key at fault.
"""
import dataclasses
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

from mixopt import config as config_mod
from mixopt.config import TEMPERED_FAMILIES, Config, Policy
from mixopt.errors import ConfigError
from mixopt.names import FAMILIES, TRUTH_DEFAULTS

LINKS = ("identity", "affine")
SCENARIO_FIT_KEYS = ("samples",)  # fitted [scenario] keys; every other fitted key is a [scenario.truth] key
# Truth keys a simulation takes as traced values (no recompilation per candidate): temperature through
# the policy's synthesis temperature, the categorical Zipf exponent and smoothing through its factory.
TRACED_KEYS = {family: ("temperature",) for family in TEMPERED_FAMILIES}
TRACED_KEYS["categorical"] = ("zipf", "smoothing", "temperature")
TRACED_KEYS["learner"] = ("spectrum", "signal", "noise", "lr", "epochs", "batch", "steps")
# Integer truth keys whose default is None (so their type cannot be read off TRUTH_DEFAULTS).
INTEGER_TRUTH_KEYS = ("capacity", "minority_size", "bins")


class Metric(NamedTuple):
    name: str
    link: str  # identity | affine: measured = a + b * metric (a and b fitted, shared by the metric's runs)
    generation: np.ndarray  # (n,) int
    value: np.ndarray  # (n,)
    stderr: np.ndarray | None  # (n,) > 0, or None: unknown (the residual scale is estimated)


class Run(NamedTuple):
    name: str
    policy: dict  # [policy] keys
    metrics: tuple[Metric, ...]


class FitKey(NamedTuple):
    name: str
    low: float
    high: float
    integer: bool
    log: bool  # searched and reported on a log scale (a range over a factor of 10 or more)
    traced: bool  # changes no compiled program (TRACED_KEYS)

    def clip(self, value: float) -> float:
        value = min(max(value, self.low), self.high)
        return float(round(value)) if self.integer else float(value)


class Measurements(NamedTuple):
    path: str
    family: str
    scenario: dict  # the known [scenario] table (with its truth), generations filled in
    fit: tuple[FitKey, ...]
    runs: tuple[Run, ...]

    @property
    def generations(self) -> int:
        return self.scenario["generations"]

    def config(self, values: dict, policy: dict, *, seeds: int = 100, seed: int = 0) -> Config:
        """The config of the world ``values`` (fitted key -> value) under ``policy``."""
        scenario = dict(self.scenario, truth=dict(self.scenario.get("truth", {})))
        for key in self.fit:
            value = int(round(values[key.name])) if key.integer else float(values[key.name])
            (scenario if key.name in SCENARIO_FIT_KEYS else scenario["truth"])[key.name] = value
        return config_mod.from_dict({"scenario": scenario, "policy": policy, "run": {"seeds": seeds, "seed": seed}})

    def midpoint(self) -> dict:
        return {k.name: k.clip(math.sqrt(k.low * k.high) if k.log else (k.low + k.high) / 2) for k in self.fit}


def _where(path, text):
    return f"{path}: {text}"


def _fit_keys(path, family: str, fit, known: dict) -> tuple[FitKey, ...]:
    if not isinstance(fit, dict) or not fit:
        raise ConfigError(_where(path, "fit must be a table of KEY = [LOW, HIGH] (the scenario keys to fit)"))
    allowed = SCENARIO_FIT_KEYS + tuple(TRUTH_DEFAULTS[family])
    keys = []
    for name, span in fit.items():
        name = name.removeprefix("truth.")
        if name not in allowed:
            raise ConfigError(_where(path, f"fit.{name} is not a scenario key of family {family!r}; "
                                           f"allowed: {', '.join(allowed)}"))
        if name in known.get("truth", {}) or name in known:
            raise ConfigError(_where(path, f"fit.{name} is also given as known in [scenario]: keep one"))
        if (not isinstance(span, list) or len(span) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in span)):
            raise ConfigError(_where(path, f"fit.{name} must be [LOW, HIGH] with two finite numbers, got {span!r}"))
        low, high = float(span[0]), float(span[1])
        if low > high:
            raise ConfigError(_where(path, f"fit.{name} has low {span[0]} > high {span[1]}"))
        default = TRUTH_DEFAULTS[family].get(name)
        integer = name == "samples" or name in INTEGER_TRUTH_KEYS or (isinstance(default, int)
                                                                       and not isinstance(default, bool))
        if not isinstance(default, (int, float, type(None))) or isinstance(default, bool):
            raise ConfigError(_where(path, f"fit.{name} is not a numeric key: give it in [scenario.truth]"))
        traced = name in TRACED_KEYS.get(family, ()) and not (name == "smoothing" and low <= 0)
        keys.append(FitKey(name, low, high, integer, low > 0 and high >= 10 * low, traced))
    return tuple(keys)


def _numbers(path, where, values, *, integer=False) -> np.ndarray:
    kind = int if integer else (int, float)
    if (not isinstance(values, list) or not values
            or not all(isinstance(v, kind) and not isinstance(v, bool) for v in values)):
        raise ConfigError(_where(path, f"{where} must be a non-empty list of {'integers' if integer else 'numbers'}"))
    array = np.asarray(values, np.int64 if integer else np.float64)
    if not integer and not np.isfinite(array).all():
        raise ConfigError(_where(path, f"{where} must hold finite numbers"))
    return array


def _metric(path, where, table, metric_names) -> Metric:
    if not isinstance(table, dict):
        raise ConfigError(_where(path, f"{where} must be a table"))
    unknown = sorted(set(table) - {"name", "link", "generation", "value", "stderr"})
    if unknown:
        raise ConfigError(_where(path, f"{where}.{unknown[0]} is not a key; allowed: name, link, generation, "
                                       "value, stderr"))
    name = table.get("name")
    if name not in metric_names:
        raise ConfigError(_where(path, f"{where}.name {name!r} is not a metric of this family; "
                                       f"it has {', '.join(metric_names)}"))
    link = table.get("link", "identity")
    if link not in LINKS:
        raise ConfigError(_where(path, f"{where}.link must be one of {', '.join(LINKS)}, got {link!r}"))
    generation = _numbers(path, f"{where}.generation", table.get("generation"), integer=True)
    value = _numbers(path, f"{where}.value", table.get("value"))
    if len(value) != len(generation):
        raise ConfigError(_where(path, f"{where}.value has {len(value)} values for {len(generation)} generations"))
    if 0 not in generation:
        raise ConfigError(_where(path, f"{where} has no generation 0 (the model trained on human data only): "
                                       "calibration needs it"))
    if (generation < 0).any() or len(set(generation.tolist())) != len(generation):
        raise ConfigError(_where(path, f"{where}.generation must be distinct integers >= 0"))
    stderr = None
    if "stderr" in table:
        stderr = _numbers(path, f"{where}.stderr", table["stderr"])
        if len(stderr) != len(generation):
            raise ConfigError(_where(path, f"{where}.stderr has {len(stderr)} values for {len(generation)} generations"))
        if (stderr <= 0).any():
            raise ConfigError(_where(path, f"{where}.stderr must be > 0 (a standard error), got "
                                           f"{float(stderr[stderr <= 0][0])!r}"))
    order = np.argsort(generation)
    return Metric(name, link, generation[order], value[order], None if stderr is None else stderr[order])


def _runs(path, runs, family_names) -> tuple[Run, ...]:
    if not isinstance(runs, list) or not runs:
        raise ConfigError(_where(path, "needs at least one [[run]] (an observed run with its policy and metrics)"))
    out, names = [], set()
    for i, table in enumerate(runs):
        where = f"run[{i}]"
        if not isinstance(table, dict):
            raise ConfigError(_where(path, f"{where} must be a table"))
        unknown = sorted(set(table) - {"name", "policy", "metric"})
        if unknown:
            raise ConfigError(_where(path, f"{where}.{unknown[0]} is not a key; allowed: name, policy, metric"))
        name = str(table.get("name", f"run{i}"))
        if name in names:
            raise ConfigError(_where(path, f"two runs are named {name!r}"))
        names.add(name)
        policy = table.get("policy", {})
        if not isinstance(policy, dict):
            raise ConfigError(_where(path, f"{where}.policy must be a table of [policy] keys"))
        allowed = [f.name for f in dataclasses.fields(Policy)]
        bad = sorted(set(policy) - set(allowed))
        if bad:
            raise ConfigError(_where(path, f"{where}.policy.{bad[0]} is not a policy key; allowed: {', '.join(allowed)}"))
        metrics = table.get("metric")
        if not isinstance(metrics, list) or not metrics:
            raise ConfigError(_where(path, f"{where} needs at least one [[run.metric]]"))
        parsed = tuple(_metric(path, f"{where}.metric[{j}]", m, family_names) for j, m in enumerate(metrics))
        if len({m.name for m in parsed}) != len(parsed):
            raise ConfigError(_where(path, f"{where} gives a metric twice"))
        out.append(Run(name, policy, parsed))
    return tuple(out)


def _check_links(path, runs) -> None:
    links = {}
    for run in runs:
        for metric in run.metrics:
            if links.setdefault(metric.name, metric.link) != metric.link:
                raise ConfigError(_where(path, f"metric {metric.name} has link {links[metric.name]} in one run and "
                                               f"{metric.link} in another: one link per metric (the same units)"))


def parse(data: dict, path: str = "measurements") -> Measurements:
    """Checks a measurements table (a parsed TOML file) and returns it; ConfigError naming the key otherwise."""
    unknown = sorted(set(data) - {"family", "fit", "scenario", "run"})
    if unknown:
        raise ConfigError(_where(path, f"unknown key {unknown[0]!r}; allowed: family, fit, scenario, run"))
    scenario = data.get("scenario", {})
    if not isinstance(scenario, dict):
        raise ConfigError(_where(path, "[scenario] must be a table"))
    family = data.get("family", scenario.get("family", "gaussian"))
    if family not in FAMILIES:
        raise ConfigError(_where(path, f"family must be one of {', '.join(FAMILIES)}, got {family!r}"))
    if scenario.get("family", family) != family:
        raise ConfigError(_where(path, f"family {family!r} and scenario.family {scenario['family']!r} differ"))
    fit = _fit_keys(path, family, data.get("fit"), scenario)
    scenario = dict(scenario, family=family)
    from mixopt.families import make_family

    runs_table = data.get("run")
    longest = max((int(np.max(m.get("generation", [0]) or [0])) for r in (runs_table or []) if isinstance(r, dict)
                   for m in (r.get("metric") or []) if isinstance(m, dict) and isinstance(m.get("generation"), list)
                   and all(isinstance(g, int) for g in m["generation"])), default=1)
    scenario.setdefault("generations", max(1, longest))
    probe = Measurements(path, family, scenario, fit, ())
    base = probe.config(probe.midpoint(), {})  # the known keys checked with the fitted ones at mid-range
    names = make_family(family, base.scenario.truth, num_samples=base.scenario.samples).metric_names
    runs = _runs(path, runs_table, names)
    _check_links(path, runs)
    measured = Measurements(path, family, scenario, fit, runs)
    for run in runs:
        too_late = max(int(m.generation.max()) for m in run.metrics)
        if too_late > measured.generations:
            raise ConfigError(_where(path, f"run {run.name!r} measures generation {too_late} beyond "
                                           f"scenario.generations = {measured.generations}"))
        try:
            measured.config(measured.midpoint(), run.policy)
        except ConfigError as err:
            raise ConfigError(_where(path, f"run {run.name!r}: {err}")) from None
    return measured


def load(path: str | Path) -> Measurements:
    """Reads and checks a measurements TOML file."""
    return parse(config_mod.read_file(path), str(path))


def load_policy(path: str | Path) -> tuple[str, dict]:
    """A ``--predict`` file: a TOML (or JSON) with a ``[policy]`` table; (its name without extension, the keys)."""
    data = config_mod.read_file(path)
    policy = data.get("policy")
    if not isinstance(policy, dict):
        raise ConfigError(f"{path}: a --predict file needs a [policy] table")
    return Path(path).stem, policy
