"""Intervals of a fit and of its predictions (90%).

Continuous keys and link coefficients: the Laplace (Gauss-Newton) approximation on the logit scale,
covariance (J^T J)^-1 of the weighted residuals' Jacobian J, scaled by max(1, chi^2 / dof) (or by
chi^2 / dof where no standard errors were given); the interval u +- z sd maps back inside the range.
Integer keys: profile likelihood over a grid around the best value, continuous keys refitted there.
A prediction's variance is g Sigma g^T (the parameters' uncertainty carried through the simulator,
g by central differences on the same seeds), plus the profile spread of the integer keys, plus
the Monte-Carlo variance of its simulated mean.
"""
import math

import numpy as np

from mixopt.calibration.fit import (PROFILE_DELTA, Z, Evaluation, Points, continuous, evaluate, from_unit,
                                    jacobian, refine, to_unit)
from mixopt.calibration.world import World
from mixopt.errors import SimulationError

PROFILE_POINTS = 3  # grid values on each side of the best integer value


def scale_of(evaluation: Evaluation, points: Points, num_params: int) -> tuple[float, int]:
    """The covariance scale and the degrees of freedom of the fit."""
    dof = len(points.value) - num_params
    ratio = evaluation.chi2 / dof if dof > 0 else 1.0
    return (ratio if not points.known_stderr else max(1.0, ratio)), dof


def num_params(world: World, links: dict) -> int:
    return sum(k.low < k.high for k in world.measurements.fit) + 2 * sum(v == "affine" for v in links.values())


def _grid(key, best: float) -> list[float]:
    if key.log:
        factors = [2.0 ** (j / 2) for j in range(-PROFILE_POINTS, PROFILE_POINTS + 1)]
        grid = [key.clip(best * f) for f in factors]
    else:
        width = max(1.0, round((key.high - key.low) / 20))
        grid = [key.clip(best + j * width) for j in range(-PROFILE_POINTS, PROFILE_POINTS + 1)]
    return sorted(set(grid))


FINE_POINTS = 7  # a second, finer grid between the coarse minimum's neighbours
EXTEND = 4  # times the coarse grid may be walked on where its minimum is at one end
CAP = 50.0  # profile points more than this (times the scale) above the minimum stay out of the parabola


def profile(world, points, links, values: dict, best: Evaluation, *, steps: int, scale_fn) -> tuple[dict, Evaluation, dict]:
    """Profile likelihood of each integer key; returns (values, evaluation) moved to a better grid
    value where one is found, and key -> (ci_low, ci_high, grid chi^2 list, ridge), ``ridge`` the
    refitted values of every key at the two ends ({"low": values, "high": values}): where the
    integer key and a continuous one trade off (a ridge of the chi^2), the continuous key's
    interval and the predictions follow the ridge, not the best integer value alone.

    The chi^2 of an integer key is jagged on common random numbers (another M draws other samples:
    a categorical M of 700 against 712 moved it by 4 with the Zipf exponent refitted), so a coarse
    grid, then a fine one between the coarse minimum's neighbours, are refitted, and the interval
    comes from a parabola fitted through the profile (on the log scale for a log key): its
    curvature, not the jagged crossing of one grid pair.
    """
    intervals = {}
    for key in [k for k in world.measurements.fit if k.integer and k.low < k.high]:
        table = _refits(world, points, links, values, key, _grid(key, values[key.name]), steps)
        for _ in range(EXTEND if table else 0):  # walk the grid on until it brackets the minimum
            coarse, i = _lowest(table)
            if 0 < i < len(coarse) - 1 or coarse[i][0] in (key.low, key.high):
                break
            table += _refits(world, points, links, values, key, _beyond(key, coarse, i == 0), steps)
        if not table:
            continue
        coarse, i = _lowest(table)
        fine = _between(key, coarse[max(i - 1, 0)][0], coarse[min(i + 1, len(coarse) - 1)][0])
        table += _refits(world, points, links, values, key, [v for v in fine if v not in {r[0] for r in table}], steps)
        _, low_chi2, fitted, ev = min(table, key=lambda row: row[1])
        if low_chi2 < best.chi2:
            values, best = fitted, ev
        delta = PROFILE_DELTA * scale_fn(best)
        lowest = min(low_chi2, best.chi2)
        grid = sorted((v, c, f) for v, c, f, _ in table)
        ends = _parabola(key, grid, lowest, delta, scale_fn(best))
        if ends is None:  # no curvature to fit: where the profile itself crosses
            ends = (_crossing(key, grid, lowest, delta, -1), _crossing(key, grid, lowest, delta, +1))
        (low, low_values), (high, high_values) = ends
        intervals[key.name] = (low, high, [(v, c) for v, c, _ in grid], {"low": low_values, "high": high_values})
    return values, best, intervals


def _lowest(table: list) -> tuple[list, int]:
    """The profile rows in order of the key's value, and where the lowest chi^2 is."""
    rows = sorted(table, key=lambda row: row[0])
    return rows, min(range(len(rows)), key=lambda j: rows[j][1])


def _refits(world, points, links, values: dict, key, grid, steps: int) -> list:
    table = []
    for value in grid:
        try:
            fitted, ev = refine(world, points, links, {**values, key.name: value}, steps=max(1, steps // 3))
        except SimulationError:
            continue
        table.append((value, ev.chi2, fitted, ev))
    return table


def _beyond(key, coarse: list, below: bool) -> list:
    """``PROFILE_POINTS`` more grid values past the coarse grid's lowest (``below``) or highest value,
    at the grid's own spacing (a factor for a log key)."""
    edge, inner = (coarse[0][0], coarse[1][0]) if below else (coarse[-1][0], coarse[-2][0])
    if key.log:
        factor = edge / inner
        grid = [edge * factor ** j for j in range(1, PROFILE_POINTS + 1)]
    else:
        grid = [edge + (edge - inner) * j for j in range(1, PROFILE_POINTS + 1)]
    return sorted({key.clip(v) for v in grid} - {edge})


def _between(key, low: float, high: float) -> list:
    """``FINE_POINTS`` whole values evenly between ``low`` and ``high`` (log-evenly for a log key)."""
    scale, inverse = (math.log, math.exp) if key.log else (float, float)
    values = np.linspace(scale(low), scale(high), FINE_POINTS + 2)[1:-1]
    return sorted({key.clip(float(round(inverse(v)))) for v in values})


def _parabola(key, grid: list, lowest: float, delta: float, scale: float):
    """((low, values), (high, values)) from a least-squares parabola through the profile points
    within ``CAP`` of its minimum (x: the key on its log or linear scale), the other keys' refitted
    values followed linearly along x; None where fewer than 3 points or no upward curvature."""
    scale_of, inverse = (math.log, math.exp) if key.log else (float, float)
    rows = [(scale_of(v), c, f) for v, c, f in grid if c - lowest <= CAP * scale]
    if len(rows) < 3:
        return None
    x, chi2 = np.array([r[0] for r in rows]), np.array([r[1] for r in rows])
    c2, c1, _ = np.polyfit(x, chi2, 2)
    if not c2 > 0:
        return None
    center, half = -c1 / (2 * c2), math.sqrt(delta / c2)
    out = []
    for end in (center - half, center + half):
        value = float(min(max(inverse(end), key.low), key.high))
        ridge = {}
        for name, first in rows[0][2].items():
            if isinstance(first, float) and name != key.name:
                slope, intercept = np.polyfit(x, [r[2][name] for r in rows], 1)
                ridge[name] = float(intercept + slope * end)
        out.append((value, {**rows[0][2], **ridge, key.name: value}))
    return tuple(out)


def _crossing(key, grid: list, lowest: float, delta: float, side: int) -> tuple[float, dict]:
    """Where the profile chi^2 crosses ``lowest + delta`` beyond its minimum on ``side`` (-1 below, +1
    above), and the refitted values there. Between grid values sqrt(chi^2 - lowest) is interpolated
    linearly (on the log scale for a log key): exact for a quadratic profile, where interpolating
    chi^2 itself across a coarse grid put the crossing far too close to the minimum (a fitted M of
    734 got [732, 737] where the profile's own width was several times that). The range's end, with
    the last grid value's fit, if it never crosses."""
    scale, inverse = (math.log, math.exp) if key.log else (float, float)
    order = grid if side > 0 else grid[::-1]
    start = min(range(len(order)), key=lambda i: order[i][1])
    root = lambda chi2: math.sqrt(max(chi2 - lowest, 0.0))  # noqa: E731
    target = math.sqrt(delta)
    for (v0, c0, f0), (v1, c1, f1) in zip(order[start:], order[start + 1:]):
        if root(c1) > target >= root(c0):
            t = (target - root(c0)) / (root(c1) - root(c0))
            ridge = {k: (f0[k] + t * (f1[k] - f0[k]) if isinstance(f0[k], float) else f0[k]) for k in f0}
            value = float(inverse(scale(v0) + t * (scale(v1) - scale(v0))))
            return value, {**ridge, key.name: value}
        if root(c1) > target:
            break
    last = order[-1][2] if order else {}
    return (key.high if side > 0 else key.low), {**last, key.name: key.high if side > 0 else key.low}


def covariance(world: World, points: Points, links: dict, values: dict, best: Evaluation, scale: float):
    """Covariance of (continuous keys on the logit scale, then a and b of each affine link)."""
    keys = continuous(world.measurements)
    columns = []
    if keys:
        dmu = jacobian(lambda v: evaluate(world, points, links, v).mu, keys, values)  # (points, keys)
        b = np.array([best.links[m][1] for m in points.metric])
        columns.append(b[:, None] * dmu)
    metric = np.array(points.metric)
    for name, link in links.items():
        if link == "affine":
            rows = (metric == name).astype(float)
            columns.append(np.stack([rows, rows * best.mu], 1))
    if not columns:
        return np.zeros((0, 0))
    jac = best.whiten @ np.concatenate(columns, 1)
    info = jac.T @ jac
    try:
        cov = np.linalg.inv(info)
        if not np.isfinite(cov).all() or (np.diag(cov) < 0).any():
            raise np.linalg.LinAlgError
    except np.linalg.LinAlgError:  # not identified: the data do not pin these keys down
        cov = np.linalg.pinv(info)
        cov[np.diag_indices_from(cov)] = np.where(np.diag(info) > 1e-12, np.diag(cov), np.inf)
    return cov * scale


def ridge(key, value: float, profiles: dict) -> tuple[float, float]:
    """(shift, variance) a continuous key gains on its unit scale along the ridges of the integer
    keys: its refitted values at each integer key's interval ends give a centre (their midpoint, where
    the profile's parabola puts the integer key, against ``value`` at the best grid value) and half
    their spread as a z-scaled standard deviation (the Gaussian marginal: the conditional variance
    plus slope^2 times the integer key's variance)."""
    shift, total = 0.0, 0.0
    for *_, ends in profiles.values():
        units = [to_unit(key, ends[end][key.name]) for end in ("low", "high") if key.name in ends[end]]
        if len(units) == 2:
            shift += (units[0] + units[1]) / 2 - to_unit(key, value)
            total += ((units[1] - units[0]) / (2 * Z)) ** 2
    return shift, total


def key_interval(key, value: float, variance: float, shift: float = 0.0) -> tuple[float, float]:
    if not math.isfinite(variance):
        return key.low, key.high
    u, half = to_unit(key, value) + shift, Z * math.sqrt(max(variance, 0.0))
    return from_unit(key, u - half), from_unit(key, u + half)


def link_params(links: dict) -> list[tuple[str, str]]:
    return [(name, part) for name, link in links.items() if link == "affine" for part in ("a", "b")]
