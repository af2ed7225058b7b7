"""The structural error of a forecast of a policy the fit did not see (model discrepancy).

A prediction's band carries the fitted parameters' uncertainty and the Monte-Carlo error: it is
conditional on the family being right. Where the family is structurally wrong, a forecast of another
retention rule misses by more than its band while the measured runs fit well: calibrated on Kazdan
et al.'s Llama-2 replace curve, the learner's accumulate-subsample forecast is off by 0.05-0.10 at
every generation against a band of +-0.02 (experiments/calibration/README.md (d)).

Model (Kennedy and O'Hagan's discrepancy, in its simplest form): a forecast of a metric at a
generation t >= 1 errs by N(0, s^2), one s per metric; generation 0, which every policy shares and
every fit sees, has none. A constant, not one that grows with t: the misses measured were offsets that
appear with the first generation the policy acts on and persist (Llama-2's 0.05-0.10 over 44
generations; a shrunk-estimator world's, tests/test_discrepancy.py), and a variance growing as t
covered 60% of a first version of that world's points (k = 4) against the constant's 67%.

s^2 is estimated by leave-one-run-out where two or more runs were measured: each run in turn is
forecast by a fit to the others (refined from the full fit's values, integer keys profiled again), and
s^2 = max(0, sum(r^2 - v - se^2)) / n over its n points at generations t >= 1 (method of moments:
r the forecast's residual, v its parametric variance, se the measurement's error). With one run measured s is not
estimated and the predictions say that their bands are conditional on the family.

A misfit that no measured run shows cannot be estimated from them (Kazdan et al.'s Llama-2: its replace
and accumulate runs agree with the learner, its accumulate-subsample run does not). ``given`` is s known
from other systems of the same kind and metric (``calibrate --structural METRIC=S``): for the published
language models' test loss, leave-one-model-out over the other models' forecasts of policies their fits
did not see (experiments/calibration/transfer.py, its README (f)). Where both exist, the larger is used.
"""
from typing import NamedTuple

import numpy as np

from mixopt.errors import ConfigError, SimulationError


class Discrepancy(NamedTuple):
    estimated: dict  # metric -> s by leave-one-run-out; empty where not estimated
    folds: int  # runs forecast from the others that gave points
    points: int  # measured points of those forecasts
    reason: str = ""  # why not estimated (empty where it was)
    given: dict = {}  # metric -> s known from other systems (calibrate --structural)

    @property
    def scale(self) -> dict:
        """metric -> the s the bands carry: the larger of the estimated and the given one."""
        return {m: max(self.estimated.get(m, 0.0), self.given.get(m, 0.0)) for m in {**self.estimated, **self.given}
                if m in self.estimated or self.given[m] > 0}

    def to_dict(self) -> dict:
        methods = [name for name, part in (("leave-one-run-out", self.estimated), ("given", self.given)) if part]
        return {"scale": self.scale or None, "method": " and ".join(methods) or "leave-one-run-out",
                "estimated": self.estimated or None, "given": self.given or None, "folds": self.folds,
                "points": self.points, "note": self.note()}

    def note(self) -> str:
        if not self.scale:
            return (f"not estimated ({self.reason or 'no run could be forecast from the others'}): the "
                    "prediction bands are conditional on the family being right (--structural METRIC=S gives "
                    "an s known from similar systems)")
        scales = ", ".join(f"{m} {s:.3g}" for m, s in self.scale.items())
        source = []
        if self.estimated:
            source.append(f"leave-one-run-out: {self.folds} runs forecast from the others, {self.points} points")
        else:
            source.append(f"not estimated from these runs: {self.reason or 'no run forecast from the others'}")
        if self.given:
            source.append("given: " + ", ".join(f"{m} {s:.3g}" for m, s in self.given.items())
                          + (" (the larger is used)" if self.estimated else ""))
        return f"included: N(0, s^2) at generations >= 1, s = {scales} ({'; '.join(source)})"


def not_estimated(reason: str) -> Discrepancy:
    return Discrepancy({}, 0, 0, reason)


def moment_scale(residual, var, stderr) -> float:
    """s by the method of moments over forecast points: sqrt(max(0, sum(r^2 - v - se^2)) / n), ``residual``
    the forecast's misses, ``var`` its own (parametric and Monte-Carlo) variance, ``stderr`` the
    measurements' standard errors."""
    residual, var, stderr = (np.asarray(a, float) for a in (residual, var, stderr))
    return float(np.sqrt(max(np.sum(residual ** 2 - var - stderr ** 2), 0.0) / residual.size)) if residual.size else 0.0


def check_given(given: dict, metrics) -> dict:
    """``--structural`` values: metric -> s >= 0 for metrics the measurements hold."""
    if given is not None and not isinstance(given, dict):
        raise ConfigError(f"structural must be a dict of metric -> s, got {given!r}")
    out = {}
    for metric, value in (given or {}).items():
        if metric not in metrics:
            raise ConfigError(f"--structural {metric}: not a measured metric (measured: {', '.join(metrics)})")
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"--structural {metric}: must be a number >= 0, got {value!r}") from None
        if not (value >= 0 and np.isfinite(value)):
            raise ConfigError(f"--structural {metric}: must be a finite number >= 0, got {value!r}")
        out[metric] = value
    return out


def estimate(world, links: dict, values: dict, *, steps: int) -> Discrepancy:
    """s per metric by leave-one-run-out over ``world``'s measured runs (see the module's docstring).
    Each fold refines the continuous keys from ``values`` and profiles the integer keys again, so
    that nothing fitted to the held-out run is kept but the starting point; a fold's points where
    its forecast is not identified (an infinite band) say nothing about the structure and are left
    out."""
    from mixopt.calibration.fit import Points, check_links, links_of, refine
    from mixopt.calibration.intervals import covariance, num_params, profile, scale_of
    from mixopt.calibration.predict import forecast
    from mixopt.calibration.world import World

    runs = world.measurements.runs
    if len(runs) < 2:
        return not_estimated("one run measured: measure a second policy to estimate it")
    if steps < 1:
        return not_estimated("--steps 0: the runs left out could not be refitted")
    parts, folds, count = {}, 0, 0
    for r, run in enumerate(runs):
        others = world.measurements._replace(runs=runs[:r] + runs[r + 1:])
        sub = World(others, seeds=len(world.keys), seed=world.seed, stream=world.stream)  # the same seeds
        sub_links, points = links_of(others), Points.of(others)
        k = num_params(sub, sub_links)
        try:
            check_links(points, sub_links)
            fitted, best = refine(sub, points, sub_links, values, steps=steps)
            fitted, best, profiles = profile(sub, points, sub_links, fitted, best, steps=steps,
                                             scale_fn=lambda ev: scale_of(ev, points, k)[0])
            cov = covariance(sub, points, sub_links, fitted, best, scale_of(best, points, k)[0])
            mean, var = forecast(sub, sub_links, fitted, best, cov, profiles, run.policy)
        except (ConfigError, SimulationError):
            continue
        finally:
            world.simulations += sub.simulations
        names, num, before = list(sub_links), world.measurements.generations + 1, count
        for metric in run.metrics:
            if metric.name not in sub_links or metric.stderr is None:
                continue
            at = names.index(metric.name) * num + np.asarray(metric.generation)
            use = (np.asarray(metric.generation) > 0) & np.isfinite(var[at])
            residual = np.asarray(metric.value)[use] - mean[at[use]]
            parts.setdefault(metric.name, []).append((residual, var[at[use]], np.asarray(metric.stderr)[use]))
            count += int(use.sum())
        folds += count > before
    columns = {m: [np.concatenate(c) for c in zip(*chunks)] for m, chunks in parts.items()}
    scale = {m: moment_scale(*c) for m, c in columns.items() if c[0].size}
    if not scale:
        return Discrepancy({}, folds, count, "no run could be forecast from the others with a finite band at "
                                             "generations >= 1 and standard errors")
    return Discrepancy(scale, folds, count)
