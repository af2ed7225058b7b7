"""Fitting a world to measurements: a weighted least-squares fit of the simulated mean curves.

The loss is the generalised least-squares chi^2 = r^T (diag(se^2) + B C B)^-1 r of the residuals
r = y - (a + b * mu(theta)), with mu the simulated means on common random numbers and C their
Monte-Carlo covariance (the points share seeds, so their Monte-Carlo errors are correlated: treated
as independent, a 2000-seed fit put a known link slope outside its interval), B = diag(b); an
``affine`` link's a and b are solved in closed form (weighted least squares) at every theta, an
``identity`` link has a = 0, b = 1.

1. Search: Optuna (TPE, seeded) over the box of every fitted key, exact simulator.
2. Refine: Levenberg-Marquardt on the continuous keys (logit scale inside their ranges), the
   Jacobian by central differences on the same seeds. (Gradients through the relaxed simulator
   were measured biased for the count families: categorical V = M = 1000 with smoothing 0.01 gives
   KL 0.41 relaxed against 0.71 exact at generation 0, so the fit runs on the exact law.)
3. Intervals: continuous keys and link coefficients by the Laplace (Gauss-Newton) approximation,
   covariance (J^T J)^-1 scaled by max(1, chi^2 / dof); integer keys (M, a model size) by profile
   likelihood: the values whose chi^2, the continuous keys refitted, is within the 90% quantile of
   chi^2_1 (2.706, times the same scale) of the best.
"""
import math
from typing import NamedTuple

import numpy as np

from mixopt.calibration.measurements import FitKey, Measurements
from mixopt.calibration.world import World
from mixopt.errors import ConfigError, SimulationError

LEVEL = 0.9
Z = 1.6448536269514722  # two-sided 90% normal quantile
PROFILE_DELTA = 2.705543454095404  # 90% quantile of chi^2 with 1 degree of freedom
STEP = 0.02  # central-difference step on the logit scale
BAD = 1e30  # the loss of a candidate world that degenerates


def to_unit(key: FitKey, value: float) -> float:
    """A value inside [low, high] -> the unconstrained (logit) scale (log first for a log-scale key)."""
    scale = math.log if key.log else float
    lo, hi = scale(key.low), scale(key.high)
    t = min(max((scale(value) - lo) / (hi - lo), 1e-6), 1 - 1e-6)
    return math.log(t / (1 - t))


def from_unit(key: FitKey, u: float) -> float:
    scale, inverse = (math.log, math.exp) if key.log else (float, float)
    lo, hi = scale(key.low), scale(key.high)
    t = 1 / (1 + math.exp(-u)) if u >= 0 else math.exp(u) / (1 + math.exp(u))  # no overflow at any u
    return float(min(max(inverse(lo + (hi - lo) * t), key.low), key.high))


class Evaluation(NamedTuple):
    chi2: float
    residuals: np.ndarray  # (points,) whitened: L^-1 (y - predicted), L L^T the covariance of the errors
    predicted: np.ndarray  # (points,)
    sigma: np.ndarray  # (points,) each point's standard error (measurement and Monte-Carlo)
    mu: np.ndarray  # (points,) the simulated metric (before the link)
    links: dict  # metric -> (a, b)
    curves: list  # per run: metric -> Curve
    whiten: np.ndarray  # (points, points) L^-1


class Points(NamedTuple):
    """Every measured point, flattened: which run and metric, the generation, value and stderr."""

    run: np.ndarray
    metric: list
    generation: np.ndarray
    value: np.ndarray
    stderr: np.ndarray  # 1 where unknown
    known_stderr: bool

    @classmethod
    def of(cls, measurements: Measurements) -> "Points":
        run, metric, generation, value, stderr, known = [], [], [], [], [], True
        for i, r in enumerate(measurements.runs):
            for m in r.metrics:
                run += [i] * len(m.value)
                metric += [m.name] * len(m.value)
                generation += m.generation.tolist()
                value += m.value.tolist()
                known &= m.stderr is not None
                stderr += (m.stderr if m.stderr is not None else np.ones(len(m.value))).tolist()
        return cls(np.array(run), metric, np.array(generation), np.array(value), np.array(stderr), known)


def links_of(measurements: Measurements) -> dict:
    return {m.name: m.link for r in measurements.runs for m in r.metrics}


def check_links(points: Points, links: dict) -> None:
    metric = np.array(points.metric)
    for name, link in links.items():
        if link == "affine" and len(set(points.generation[metric == name].tolist())) < 3:
            raise ConfigError(f"metric {name}: an affine link fits a and b, so it needs points at 3 or more "
                              "generations")


def solve_link(y, mu, weight):
    """Weighted least squares y ~ a + b mu; (a, b)."""
    design = np.stack([np.ones_like(mu), mu], 1) * np.sqrt(weight)[:, None]
    coef, *_ = np.linalg.lstsq(design, y * np.sqrt(weight), rcond=None)
    return float(coef[0]), float(coef[1])


def evaluate(world: World, points: Points, links: dict, values: dict) -> Evaluation:
    """The fit of world ``values``: chi^2, residuals, the link coefficients (solved for affine links)."""
    runs = world.measurements.runs
    curves = [world.curves(values, run.policy) for run in runs]
    mu = np.array([curves[r][m].mean[g] for r, m, g in zip(points.run, points.metric, points.generation)])
    seeds = np.stack([curves[r][m].per_seed[:, g] for r, m, g in zip(points.run, points.metric, points.generation)], 1)
    mc_cov = np.atleast_2d(np.cov(seeds, rowvar=False)) / len(seeds)
    var = np.diag(mc_cov)
    metric = np.array(points.metric)
    a, b, solved = np.zeros_like(mu), np.ones_like(mu), {}
    for name, link in links.items():
        rows = metric == name
        coef = (0.0, 1.0)
        if link == "affine":
            coef = solve_link(points.value[rows], mu[rows], 1.0 / (points.stderr[rows] ** 2 + var[rows]))
        a[rows], b[rows] = coef
        solved[name] = coef
    predicted = a + b * mu
    cov = np.diag(points.stderr ** 2) + b[:, None] * mc_cov * b[None, :]
    whiten = np.linalg.inv(np.linalg.cholesky(cov + 1e-12 * np.diag(np.diag(cov))))
    residuals = whiten @ (points.value - predicted)
    return Evaluation(float(residuals @ residuals), residuals, predicted, np.sqrt(np.diag(cov)), mu, solved, curves,
                      whiten)


def safe_chi2(world, points, links, values) -> float:
    try:
        return evaluate(world, points, links, values).chi2
    except SimulationError:
        return BAD


def search(world: World, points: Points, links: dict, *, trials: int, seed: int, progress=None) -> dict:
    """Optuna's TPE over the box of every fitted key; the best values found (the midpoint first)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    keys = [k for k in world.measurements.fit if k.low < k.high]
    fixed = {k.name: k.low for k in world.measurements.fit if k.low == k.high}
    if not keys or trials < 1:
        return {**world.measurements.midpoint(), **fixed}
    sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=min(10, max(1, trials // 3)))
    study = optuna.create_study(sampler=sampler)
    study.enqueue_trial({k.name: world.measurements.midpoint()[k.name] for k in keys})

    def objective(trial):
        values = dict(fixed)
        for k in keys:
            if k.integer:
                values[k.name] = float(trial.suggest_int(k.name, int(k.low), int(k.high), log=k.log))
            else:
                values[k.name] = trial.suggest_float(k.name, k.low, k.high, log=k.log)
        chi2 = safe_chi2(world, points, links, values)
        if progress:
            progress(trial.number + 1, trials)
        return chi2

    study.optimize(objective, n_trials=trials)
    return {**fixed, **{k.name: float(study.best_params[k.name]) for k in keys}}


def continuous(measurements: Measurements) -> list[FitKey]:
    return [k for k in measurements.fit if not k.integer and k.low < k.high]


def jacobian(fn, keys: list[FitKey], values: dict) -> np.ndarray:
    """d fn / d u (the logit scale of ``keys``) by central differences on the same seeds; (outputs, keys)."""
    columns = []
    for key in keys:
        u = to_unit(key, values[key.name])
        up = fn({**values, key.name: from_unit(key, u + STEP)})
        down = fn({**values, key.name: from_unit(key, u - STEP)})
        columns.append((up - down) / (2 * STEP))
    return np.stack(columns, -1) if columns else np.zeros((0, 0))


def refine(world: World, points: Points, links: dict, values: dict, *, steps: int) -> tuple[dict, Evaluation]:
    """Levenberg-Marquardt on the continuous keys from ``values``; the best values and their evaluation."""
    keys = continuous(world.measurements)
    best = evaluate(world, points, links, values)
    damping = 1e-2
    for _ in range(steps if keys else 0):
        try:
            jac = jacobian(lambda v: evaluate(world, points, links, v).residuals, keys, values)
        except SimulationError:
            break
        grad, hess = jac.T @ best.residuals, jac.T @ jac
        improved = False
        for _ in range(6):  # raise the damping until the step lowers chi^2
            step = np.linalg.solve(hess + damping * np.diag(np.diag(hess) + 1e-9), -grad)
            trial = {**values, **{k.name: from_unit(k, to_unit(k, values[k.name]) + s) for k, s in zip(keys, step)}}
            try:
                candidate = evaluate(world, points, links, trial)
            except SimulationError:
                candidate = None
            if candidate is not None and candidate.chi2 < best.chi2:
                values, best, improved = trial, candidate, True
                damping = max(damping / 3, 1e-6)
                break
            damping *= 4
        if not improved or best.chi2 < 1e-12:
            break
    return values, best
