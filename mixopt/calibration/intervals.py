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


def profile(world, points, links, values: dict, best: Evaluation, *, steps: int, scale_fn) -> tuple[dict, Evaluation, dict]:
    """Profile likelihood of each integer key; returns (values, evaluation) moved to a better grid
    value where one is found, and key -> (ci_low, ci_high, grid chi^2 list)."""
    intervals = {}
    for key in [k for k in world.measurements.fit if k.integer and k.low < k.high]:
        table = []
        for value in _grid(key, values[key.name]):
            try:
                fitted, ev = refine(world, points, links, {**values, key.name: value}, steps=max(1, steps // 3))
            except SimulationError:
                continue
            table.append((value, ev.chi2, fitted, ev))
        if not table:
            continue
        _, low_chi2, fitted, ev = min(table, key=lambda row: row[1])
        if low_chi2 < best.chi2:
            values, best = fitted, ev
        threshold = min(low_chi2, best.chi2) + PROFILE_DELTA * scale_fn(best)
        grid = sorted((v, c) for v, c, *_ in table)
        intervals[key.name] = (_crossing(key, grid, threshold, -1), _crossing(key, grid, threshold, +1), grid)
    return values, best, intervals


def _crossing(key, grid: list, threshold: float, side: int) -> float:
    """Where the profile chi^2 crosses ``threshold`` beyond its minimum on ``side`` (-1 below, +1 above),
    linear between grid values (on the log scale for a log key); the range's end if it never does."""
    scale, inverse = (math.log, math.exp) if key.log else (float, float)
    order = grid if side > 0 else grid[::-1]
    start = min(range(len(order)), key=lambda i: order[i][1])
    for (v0, c0), (v1, c1) in zip(order[start:], order[start + 1:]):
        if c1 > threshold >= c0:
            t = (threshold - c0) / (c1 - c0)
            return float(inverse(scale(v0) + t * (scale(v1) - scale(v0))))
        if c1 > threshold:
            break
    return key.high if side > 0 else key.low


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


def key_interval(key, value: float, variance: float) -> tuple[float, float]:
    if not math.isfinite(variance):
        return key.low, key.high
    u, half = to_unit(key, value), Z * math.sqrt(max(variance, 0.0))
    return from_unit(key, u - half), from_unit(key, u + half)


def link_params(links: dict) -> list[tuple[str, str]]:
    return [(name, part) for name, link in links.items() if link == "affine" for part in ("a", "b")]
