"""Re-evaluation of a policy under the exact simulation semantic, with fresh seeds.

"margin" has one meaning everywhere: how much better the answer is than the named comparison
(positive = the answer is better), paired on common random numbers, in the objective's units.
"""
import math
import time
from typing import NamedTuple

import jax
import numpy as np

from mixopt import montecarlo
from mixopt.config import Config
from mixopt.errors import SimulationError
from mixopt.describe import describe
from mixopt.objectives import Objective
from mixopt.optimizers.simplify import simplify
from mixopt.progress import Phase
from mixopt.optimizers.baselines import baseline_configs, budget_matched, outside_constraints
from mixopt.optimizers.notes import assumptions, outside_note
from mixopt.optimizers.space import policy_dict


class NotEvaluated(SimulationError):
    """A config the time budget left out (``paired_values``): a row that says so, not a failure."""


class Estimate(NamedTuple):
    mean: float
    ci_low: float
    ci_high: float
    human_used: float
    per_seed: np.ndarray
    trajectory: list  # records {generation, mean, ci_low, ci_high} of the objective's metric

    def summary(self) -> dict:
        return {"mean": self.mean, "ci_low": self.ci_low, "ci_high": self.ci_high, "human_used": self.human_used}


def trajectory(values: np.ndarray) -> list[dict]:
    """Per-generation mean and 95% normal CI of a (seeds, T + 1) metric."""
    means = values.mean(axis=0)
    half = 1.96 * values.std(axis=0, ddof=1) / np.sqrt(values.shape[0])
    return [{"generation": t, "mean": float(m), "ci_low": float(m - h), "ci_high": float(m + h)}
            for t, (m, h) in enumerate(zip(means, half))]


def evaluate(config: Config, objective: Objective, *, seeds: int, seed: int, stream: int = 1) -> Estimate:
    """Objective over ``seeds`` fresh Monte-Carlo seeds (key stream ``stream``, not the one the
    optimiser searched on); 95% normal CI (1.96 standard errors)."""
    return _estimate(montecarlo.per_seed_metrics(config, montecarlo.seed_keys(seed, seeds, stream=stream)), objective)


def paired_values(configs: dict, objective: Objective, *, seeds: int, seed: int, chunk: int | None = None,
                  runners: dict | None = None, deadline: float | None = None, min_seeds: int = 0,
                  precision: float | None = None, required: tuple = (),
                  compile_s: float | None = None, limit: float | None = None) -> tuple[dict, int]:
    """Per-seed metrics of every config on the same fresh seeds (stream 1), ``chunk`` seeds at a time.

    Every config sees the same keys, so differences are paired. With a ``deadline``
    (``time.perf_counter()`` value) it stops, once it has ``min_seeds``, after the round that crosses it
    or before one that the last round's time (less its compiles) says would end past it; with a ``limit``
    (the end the whole answer keeps, if not passed yet), before such a round even short of ``min_seeds``.
    ``runners``: compiled programs by ``montecarlo.structure`` (e.g. the search's, for ``chunk`` = its
    seeds) are reused. With a ``precision``, it also stops (past ``min_seeds``) once every config's 95%
    CI half-width is at most that share of its mean. With ``compile_s`` (a compile's expected seconds),
    a first-round config whose program would compile past the deadline is left out (``NotEvaluated``),
    but for the first and ``required``; a slower compile raises the expectation for the next ones (a
    program not in the disk cache takes seconds where the trials loaded theirs in a fraction of one).
    Returns ({name: metrics or SimulationError}, seeds used).
    """
    keys = montecarlo.seed_keys(seed, seeds, stream=1)
    chunk = min(chunk or seeds, seeds)
    runners = {} if runners is None else runners
    parts: dict = {name: [] for name in configs}
    errors: dict = {}
    used = 0
    phase = Phase(f"evaluating {len(configs)} policies on fresh seeds", seeds, unit="seeds")
    first = next(iter(configs), None)
    while used < seeds:
        lap, built = time.perf_counter(), 0.0
        block = keys[used:used + chunk]
        size = len(block)  # a short last block is padded with seeds already run: the chunk's program again
        block = block if size == chunk else jax.numpy.concatenate([block, keys[:chunk - size]])
        for name, config in configs.items():
            if name in errors:
                continue
            structure = montecarlo.structure(config)
            if (used == 0 and name != first and name not in required and compile_s is not None
                    and deadline is not None and time.perf_counter() + compile_s > deadline
                    and structure not in runners):
                # compiling overruns and cannot be cut short; a config on fewer seeds than the others
                # could not be paired with them: left out whole. Compiled ones cost a chunk's run
                errors[name] = NotEvaluated("not evaluated: the time budget ran out before its program compiled")
                continue
            began = time.perf_counter() if structure not in runners else None
            runners[structure] = runners[structure] if began is None else montecarlo.runner(config)
            try:
                metrics = montecarlo.per_seed_metrics(config, block, runners[structure])
                parts[name].append({m: v[:size] for m, v in metrics.items()})
            except SimulationError as err:
                errors[name] = err
            spent = 0.0 if began is None else time.perf_counter() - began  # a compile: not the next round's cost
            built, compile_s = built + spent, None if compile_s is None else max(compile_s, spent)
        used += size
        phase.update(size)
        now = time.perf_counter()
        ends = now + (now - lap - built)  # the next round's end, if it runs as long as this one did
        if deadline is not None and used >= min_seeds and ends > deadline:
            break
        if limit is not None and now <= limit < ends:  # a promise broken already (compiles) keeps the floor
            break
        if precision is not None and used >= min_seeds and _precise(parts, errors, objective, precision):
            break
    phase.close()
    out = {name: errors.get(name) or {m: np.concatenate([p[m] for p in parts[name]]) for m in parts[name][0]}
           for name in configs}
    return out, used


def _precise(parts: dict, errors: dict, objective: Objective, precision: float) -> bool:
    """Every config's objective mean known to within ``precision`` of itself (95% half-width)."""
    for name, chunks in parts.items():
        if name in errors or not chunks:
            continue
        values = np.asarray(objective.value({objective.metric: np.concatenate([c[objective.metric] for c in chunks])}))
        if 1.96 * values.std(ddof=1) / np.sqrt(len(values)) > precision * abs(values.mean()):
            return False
    return True


def _estimate(metrics: dict, objective: Objective) -> Estimate:
    values = np.asarray(objective.value(metrics))
    half = 1.96 * values.std(ddof=1) / np.sqrt(len(values))
    return Estimate(float(values.mean()), float(values.mean() - half), float(values.mean() + half),
                    float(metrics["human_used"][:, -1].mean()), values, trajectory(metrics[objective.metric]))


def paired_margin(mine: np.ndarray, theirs: np.ndarray, direction: str) -> dict:
    """How much better ``mine`` is than ``theirs`` (positive = better, in the objective's units), seed by
    seed on common random numbers, with a 95% normal CI (1.96 paired standard errors), and the same
    relative to ``theirs``'s mean (``relative``: the ratio of means, its CI by the delta method)."""
    sign = 1.0 if direction == "minimize" else -1.0
    diff = sign * (np.asarray(theirs, np.float64) - np.asarray(mine, np.float64))
    num = len(diff)
    mean, half = float(diff.mean()), 1.96 * float(diff.std(ddof=1)) / math.sqrt(num)
    base = float(np.mean(theirs))
    out = {"mean": mean, "ci_low": mean - half, "ci_high": mean + half}  # plain floats (JSON, the API)
    if base != 0.0:
        ratio = mean / base  # var(D/B) ~ var(D - ratio B) / (n B^2), the paired delta method
        spread = 1.96 * float(np.std(diff - ratio * np.asarray(theirs), ddof=1)) / (math.sqrt(num) * abs(base))
        out["relative"] = {"mean": ratio, "ci_low": ratio - spread, "ci_high": ratio + spread}
    return out


def compare(config: Config, objective: Objective, baselines: dict, *, seeds: int, seed: int, chunk: int | None = None,
            runners: dict | None = None, deadline: float | None = None, min_seeds: int = 0) -> tuple[Estimate, list]:
    """The policy and each baseline on the same fresh seeds; margins with paired 95% CIs.

    ``margin`` is how much better the policy is than the baseline (positive = better), in the
    objective's units, whichever its direction. ``chunk``, ``runners``, ``deadline``, ``min_seeds``: as for
    ``paired_values`` (the estimate's per_seed says how many seeds were used). Each row keeps the
    baseline's per-seed values (``per_seed``) for later pairing; ``public_rows`` drops them.
    """
    values, _ = paired_values({"__policy__": config, **baselines}, objective, seeds=seeds, seed=seed, chunk=chunk,
                              runners=runners, deadline=deadline, min_seeds=min_seeds)
    if isinstance(values["__policy__"], SimulationError):
        raise values["__policy__"]
    mine = _estimate(values.pop("__policy__"), objective)
    return mine, _rows(mine, values, objective)


def _rows(mine: Estimate, values: dict, objective: Objective) -> list:
    """Each baseline's estimate and the paired margin of ``mine`` against it."""
    rows = []
    for name, metrics in values.items():
        if isinstance(metrics, SimulationError):
            rows.append({"name": name, "error": str(metrics), **({"not_evaluated": True}
                                                                if isinstance(metrics, NotEvaluated) else {})})
            continue
        theirs = _estimate(metrics, objective)
        margin = paired_margin(mine.per_seed, theirs.per_seed, objective.direction)
        rows.append({"name": name, "mean": theirs.mean, "ci_low": theirs.ci_low, "ci_high": theirs.ci_high,
                     "human_used": theirs.human_used, "margin": margin["mean"],
                     "margin_ci_low": margin["ci_low"], "margin_ci_high": margin["ci_high"],
                     "trajectory": theirs.trajectory, "per_seed": theirs.per_seed})
    return rows


def public_rows(rows: list) -> list:
    """Rows without their per-seed values (for JSON)."""
    return [{k: v for k, v in row.items() if k != "per_seed"} for row in rows]


def best_budget_matched(rows: list, direction: str) -> dict | None:
    """The best of the budget-matched baselines among ``rows`` (by mean), or None."""
    matched = [row for row in rows if budget_matched(row["name"]) and "error" not in row]
    if not matched:
        return None
    pick = min if direction == "minimize" else max
    return pick(matched, key=lambda row: row["mean"])


def build_report(config: Config, objective: Objective, *, eval_seeds: int, seed: int,
                 start: Config | None = None, chunk: int | None = None, runners: dict | None = None,
                 deadline: float | None = None, min_seeds: int = 0, fallback: bool = True,
                 simplify_policy: bool = True, precision: float | None = None, constraints: dict | None = None,
                 compile_s: float | None = None, limit: float | None = None) -> dict:
    """The policy of ``config`` and every baseline on the same fresh seeds (imports JAX).

    ``start``: the policy an optimiser started from, compared on the same seeds like a baseline and
    reported apart as ``start`` (with the paired margin: how much the optimiser improved on it).
    ``chunk``, ``runners``, ``deadline``, ``min_seeds``, ``limit``: a time-budgeted evaluation
    (``paired_values``); the report's ``eval_seeds`` is the number of seeds actually used.

    ``best_baseline`` names the best budget-matched baseline and ``margin`` is the answer's paired
    margin against ``margin_vs`` (positive: the answer is better). With ``fallback``, a policy that
    does not beat the best baseline beyond its CI is not the answer: the best heuristic is (``answer``
    = ``"heuristic"``; the losing policy and its numbers stay under ``optimised``), so no answer is
    worse than a heuristic; ``margin`` then says how much better that heuristic is than the policy
    found (``margin_vs`` = ``"optimised"``). Every baseline row's margin is the answer's against it.
    With ``simplify_policy``, the policy's schedule is first written as what happens (``simplify``:
    the effective counts; shares near 0 or 1 snapped, near neighbours merged), and the simpler one
    is kept where it is no worse on the same fresh seeds (``simplified`` says which).

    ``constraints`` (the user's fixed policy keys, ``space.constraints``): every baseline, and so the
    fallback, keeps them; the report lists them. The budget-matched heuristics that break them are
    evaluated on the same seeds too, and the best of them is named under ``outside_constraints``
    (with its paired margin and a note) where it beats the answer beyond its CI: what the pipeline
    would gain if it could change, never the answer.
    """
    constraints = constraints or {}
    others = baseline_configs(config, constraints)  # the budget-matched first: under a deadline they matter most
    others = {name: others[name] for name in sorted(others, key=lambda name: not budget_matched(name))}
    outside = {f"outside:{name}": c for name, c in outside_constraints(config, constraints, others).items()}
    if start is not None:
        others["start"] = start
    simpler = simplify(config) if simplify_policy else None
    if simpler is not None and simpler[1]:  # an exact restatement is the same simulation: no need to run both
        config, simpler = simpler[0], None
        restated = True
    else:
        restated = False
    candidates = {"__policy__": config, **({"__simpler__": simpler[0]} if simpler else {})}
    values, eval_seeds = paired_values({**candidates, **others, **outside}, objective, seeds=eval_seeds, seed=seed,
                                       chunk=chunk, runners=runners, deadline=deadline, min_seeds=min_seeds,
                                       precision=precision, compile_s=compile_s, limit=limit)
    config, estimate, simplified = _simplest(candidates, {k: values.pop(k) for k in candidates}, objective, simpler)
    outside_rows = _rows(estimate, {k: values.pop(k) for k in outside}, objective)
    simplified = "exact" if restated else simplified
    baselines = _rows(estimate, values, objective)
    for row in baselines:  # each row says what it did, as a [policy] table
        row["policy"] = policy_dict(others[row["name"]].policy)
    extra = {}
    if start is not None:  # compare() keeps the order of ``others``: the start is its last row
        extra = {"start": {**public_rows([baselines.pop()])[0], "policy": policy_dict(start.policy)}}
    report = {**extra, "scenario": config.to_dict()["scenario"], "policy": policy_dict(config.policy),
              "description": describe(config), "objective": {
                  "metric": objective.name, "direction": objective.direction, "mean": estimate.mean,
                  "ci_low": estimate.ci_low, "ci_high": estimate.ci_high, "eval_seeds": eval_seeds},
              "human_used": estimate.human_used, "trajectory": estimate.trajectory,
              "baselines": public_rows(baselines), "answer": "optimised", "simplified": simplified,
              "constraints": constraints, "assumptions": assumptions(config)}
    best = best_budget_matched(baselines, objective.direction)
    if best is None:
        return report
    margin = paired_margin(estimate.per_seed, best["per_seed"], objective.direction)
    report.update(best_baseline=best["name"], margin=margin, margin_vs=best["name"])
    if fallback and not margin["ci_low"] > 0:
        heuristic = others[best["name"]]
        report["optimised"] = {key: report[key] for key in ("policy", "description", "objective", "human_used",
                                                             "trajectory")}
        report.update(answer="heuristic", policy=policy_dict(heuristic.policy), description=describe(heuristic),
                      human_used=best["human_used"], trajectory=best["trajectory"],
                      objective={**report["objective"], **{k: best[k] for k in ("mean", "ci_low", "ci_high")}},
                      margin=paired_margin(best["per_seed"], estimate.per_seed, objective.direction),
                      margin_vs="optimised")
        estimate = estimate._replace(per_seed=best["per_seed"])
        rows = _rows(estimate, {k: v for k, v in values.items() if k != "start"}, objective)  # against the answer
        report["baselines"] = [{**row, "policy": policy_dict(others[row["name"]].policy)} for row in public_rows(rows)]
    note = outside_note(estimate, outside_rows, outside, objective, constraints, paired_margin)
    if note is not None:
        report["outside_constraints"] = note
    return report


def _simplest(candidates: dict, values: dict, objective: Objective, simpler) -> tuple[Config, Estimate, str]:
    """The policy, or its simpler spelling where that is no worse beyond the paired CI (``simplified``:
    ``no`` or ``checked``)."""
    if isinstance(values["__policy__"], SimulationError):
        raise values["__policy__"]
    mine = _estimate(values["__policy__"], objective)
    if simpler is None or isinstance(values["__simpler__"], SimulationError):
        return candidates["__policy__"], mine, "no"
    simple = _estimate(values["__simpler__"], objective)
    margin = paired_margin(mine.per_seed, simple.per_seed, objective.direction)  # > 0: the original is better
    if margin["ci_low"] > 0:
        return candidates["__policy__"], mine, "no"
    return candidates["__simpler__"], simple, "checked"
