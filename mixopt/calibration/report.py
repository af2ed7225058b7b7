"""``mixopt calibrate``: fit the world to the measurements, say how well it fits, predict other policies.

The JSON (DESIGN.md section 4): ``scenario`` (the fitted world), ``fitted`` (each key's value and
90% interval, with the method), ``link``, ``fit`` (each measured point against the fit),
``verdict`` ("fits" or "cannot fit: ..."), ``predictions``, ``discrepancy`` (the structural error in
the predictions' bands, ``discrepancy.py``).
"""
import math

import numpy as np

from mixopt.calibration import predict as predict_mod
from mixopt.calibration import discrepancy
from mixopt.calibration.fit import LEVEL, Z, Points, check_links, continuous, links_of, refine, search
from mixopt.calibration.intervals import covariance, key_interval, link_params, num_params, profile, ridge, scale_of
from mixopt.calibration.measurements import Measurements
from mixopt.calibration.world import World
from mixopt.errors import ConfigError
from mixopt.progress import Phase, Waiting

P_CANNOT_FIT = 0.001  # chi^2 test: a fit this unlikely under the measurement errors is refused


def chi2_sf(x: float, dof: int) -> float:
    """P(chi^2_dof > x) by the Wilson-Hilferty cube-root normal approximation (ample for a 0.001 test)."""
    if dof <= 0:
        return 1.0
    z = ((x / dof) ** (1 / 3) - (1 - 2 / (9 * dof))) / math.sqrt(2 / (9 * dof))
    return 0.5 * math.erfc(z / math.sqrt(2))


def calibrate(measurements: Measurements, *, predict=(), seeds: int = 200, seed: int = 0, steps: int = 10,
              trials: int = 40, progress: bool = True, structural: dict | None = None) -> dict:
    """Fits ``measurements``; ``predict``: (name, policy dict) pairs to predict with intervals;
    ``structural``: metric -> a structural error s known from other systems (``discrepancy``), carried by
    the prediction bands at generations >= 1 where it exceeds the one the runs give."""
    for name, value, low in (("seeds", seeds, 2), ("steps", steps, 0), ("trials", trials, 0), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    for name, policy in predict:
        try:
            measurements.config(measurements.midpoint(), policy)
        except ConfigError as err:
            raise ConfigError(f"--predict {name}: {err}") from None
    world = World(measurements, seeds=seeds, seed=seed)
    points, links = Points.of(measurements), links_of(measurements)
    check_links(points, links)
    given = discrepancy.check_given(structural, list(links))
    with Phase("calibrate: search", trials if progress else None, unit="trials") as bar:
        start = search(world, points, links, trials=trials, seed=seed, progress=lambda n, _: bar.update(to=n))
    with Waiting("calibrate: refine (Levenberg-Marquardt), profiles, intervals"):
        values, best = refine(world, points, links, start, steps=steps)
        k = num_params(world, links)
        values, best, profiles = profile(world, points, links, values, best, steps=steps,
                                         scale_fn=lambda ev: scale_of(ev, points, k)[0])
        scale, dof = scale_of(best, points, k)
        cov = covariance(world, points, links, values, best, scale)
    fitted = _fitted(measurements, values, cov, profiles)
    link = _links(links, best, cov, len(continuous(measurements)))
    payload = {
        "scenario": measurements.config(values, {}).to_dict()["scenario"],
        "fitted": fitted, "link": link, "level": LEVEL,
        "fit": _fit_rows(measurements, points, best),
        "chi2": best.chi2, "dof": dof, "interval_scale": scale,
        "verdict": verdict(measurements, points, best, dof),
        "seeds": seeds, "seed": seed, "simulations": world.simulations,
        "policy": dict(measurements.runs[0].policy),
    }
    structural = discrepancy.not_estimated("no --predict asked for")
    if predict:
        with Waiting(f"calibrate: structural error (each of {len(measurements.runs)} runs forecast from the others)"):
            structural = discrepancy.estimate(world, links, values, steps=steps)
    structural = structural._replace(given=given)
    payload["discrepancy"] = structural.to_dict()
    with Waiting(f"calibrate: predict {len(predict)} policies"):
        payload["predictions"] = [row for name, policy in predict for row in predict_mod.predict(
            world, links, values, best, cov, profiles, name, policy, structural.scale)]
    payload["simulations"] = world.simulations
    return payload


def _fitted(measurements: Measurements, values: dict, cov, profiles: dict) -> dict:
    out = {}
    for i, key in enumerate(continuous(measurements)):
        # conditional on the integer keys' best values, widened and recentred along their ridges (``ridge``)
        shift, variance = ridge(key, values[key.name], profiles)
        low, high = key_interval(key, values[key.name], cov[i, i] + variance, shift)
        out[key.name] = {"value": values[key.name], "ci_low": low, "ci_high": high,
                         "method": "laplace" + (" + profile ridge" if profiles else "")}
    for key in measurements.fit:
        if key.low == key.high:
            out[key.name] = {"value": key.low, "ci_low": key.low, "ci_high": key.high, "method": "fixed"}
        elif key.integer:
            low, high, *_ = profiles.get(key.name, (key.low, key.high))
            out[key.name] = {"value": values[key.name], "ci_low": low, "ci_high": high, "method": "profile"}
    return {key.name: out[key.name] for key in measurements.fit}


def _links(links: dict, best, cov, offset: int) -> dict:
    out = {name: {"link": link} for name, link in links.items()}
    for j, (name, part) in enumerate(link_params(links)):
        value = best.links[name][0 if part == "a" else 1]
        sd = math.sqrt(cov[offset + j, offset + j]) if math.isfinite(cov[offset + j, offset + j]) else math.inf
        out[name][part] = {"value": value, "ci_low": value - Z * sd, "ci_high": value + Z * sd}
    return out


def _fit_rows(measurements: Measurements, points: Points, best) -> list[dict]:
    return [{"run": measurements.runs[r].name, "metric": m, "generation": int(g), "measured": float(y),
             "predicted": float(p), "residual_z": float((y - p) / s),
             "stderr": float(se) if points.known_stderr else None}
            for r, m, g, y, p, s, se in zip(points.run, points.metric, points.generation, points.value,
                                            best.predicted, best.sigma, points.stderr)]


def verdict(measurements: Measurements, points: Points, best, dof: int) -> str:
    """"fits", or "cannot fit: ..." with the chi^2 test and where the shape is wrong."""
    if not points.known_stderr:
        return "fits (not tested: no standard errors were given, the intervals use the residual scale)"
    if dof <= 0:
        return "fits (as many fitted parameters as points: the fit is not tested)"
    p = chi2_sf(best.chi2, dof)
    if p >= P_CANNOT_FIT:
        return "fits"
    return (f"cannot fit: chi2 = {best.chi2:.1f} on {dof} degrees of freedom (p = {p:.1e}); "
            + _shape(measurements, points, best))


def _shape(measurements: Measurements, points: Points, best) -> str:
    """Where the family's curve goes the wrong way, or the worst point."""
    for r, run in enumerate(measurements.runs):
        for metric in run.metrics:
            rows = (points.run == r) & (np.array(points.metric) == metric.name)
            y, p, se = points.value[rows], best.predicted[rows], points.stderr[rows]
            rise, fitted = y[-1] - y[0], p[-1] - p[0]
            if abs(rise) > 3 * math.hypot(se[0], se[-1]) and np.sign(rise) != np.sign(fitted):
                return (f"run {run.name}: the measured {metric.name} {'rises' if rise > 0 else 'falls'} by "
                        f"{abs(rise):.4g} from generation 0 to {int(metric.generation[-1])} where the fitted family's "
                        f"{'falls' if fitted < 0 else 'rises'} by {abs(fitted):.4g}")
    z = (points.value - best.predicted) / best.sigma
    i = int(np.argmax(np.abs(z)))
    return (f"the worst point is run {measurements.runs[points.run[i]].name}, {points.metric[i]} at generation "
            f"{int(points.generation[i])}: measured {points.value[i]:.4g}, fitted {best.predicted[i]:.4g} "
            f"({z[i]:+.1f} standard errors)")
