"""Optuna search over the policy (continuous and structural keys), with persistent, resumable studies.

Every trial evaluates its policy on the same seeds (common random numbers), so two trials are
compared on the same randomness; compiled simulators are cached per structure, so continuous
values never recompile. The full policy, the scenario and the metrics are stored as user attributes.
"""
import math
from typing import NamedTuple

from mixopt import runtime
from mixopt.config import Config
from mixopt.errors import ConfigError, SimulationError
from mixopt.objectives import Objective
from mixopt.progress import Phase
from mixopt.optimizers.baselines import baseline_params
from mixopt.optimizers.space import policy_changes, policy_dict, suggest, with_policy
from mixopt.optimizers.evaluators import Evaluator
from mixopt.optimizers.hybrid import refine
from mixopt.optimizers.interrupt import DeferredInterrupt
from mixopt.store import fail_stale_trials, open_study

SAMPLERS = ("tpe", "cmaes", "gp", "random", "nsga")


class SearchResult(NamedTuple):
    config: Config  # the scenario with the best policy found
    study: object  # the optuna.Study
    evaluations: int  # simulator evaluations (seed-trajectories) in this call
    runners: dict | None = None  # compiled programs by montecarlo.structure (one worker), for reuse


def _sampler(name: str, seed: int, multi: bool):
    import optuna

    if name not in SAMPLERS:
        raise ConfigError(f"sampler must be one of {', '.join(SAMPLERS)}, got {name!r}")
    if multi and name not in ("nsga", "tpe", "random"):
        raise ConfigError(f"sampler {name} is single-objective; use nsga, tpe or random for several objectives")
    return {"tpe": lambda: optuna.samplers.TPESampler(seed=seed),
            "cmaes": lambda: optuna.samplers.CmaEsSampler(seed=seed),
            "gp": lambda: optuna.samplers.GPSampler(seed=seed),
            "random": lambda: optuna.samplers.RandomSampler(seed=seed),
            "nsga": lambda: optuna.samplers.NSGAIISampler(seed=seed)}[name]()


def _ask_tell(study, evaluate, config, objectives, space, *, trials, batch, timeout, worker, interrupt, progress):
    """Rounds of ``batch`` trials: ask them all, evaluate them as one vmapped program per structure,
    tell them all. A Ctrl-C during a round stores its trials as PRUNED (``interrupted``)."""
    import time

    import optuna

    start = time.monotonic()
    bar = _progress_bar(progress, trials)
    while not interrupt.pending and not (timeout and time.monotonic() - start > timeout):
        done = len(study.get_trials(deepcopy=False, states=_finished_states()))
        if bar is not None:
            bar.update(to=done)
        if done >= trials:
            break
        asked = [study.ask() for _ in range(min(batch, trials - done))]
        configs = []
        for trial in asked:
            trial.set_user_attr("worker", worker)
            configs.append(suggest(trial, config, space))
            trial.set_user_attr("policy", policy_dict(configs[-1].policy))
        interrupt.in_objective = True
        try:
            results = evaluate.many(configs)
        except BaseException as err:
            if not (isinstance(err, KeyboardInterrupt) or interrupt.pending):
                raise
            runtime.mark()
            for trial in asked:
                trial.set_user_attr("interrupted", True)
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            break
        finally:
            interrupt.in_objective = False
        for trial, result in zip(asked, results):
            value = _outcome(trial, result, len(objectives))
            if isinstance(result, SimulationError):  # told as FAIL directly: a NaN would also warn
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, value)
    if bar is not None:
        bar.close()


def _finished_states():
    import optuna

    return (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL, optuna.trial.TrialState.PRUNED)


def _outcome(trial, result, num_objectives: int):
    """What a trial reports: its objective value(s), or NaN (Optuna stores the trial as FAILED) for a
    degenerate simulation; the metrics or the error are stored as user attributes."""
    if isinstance(result, SimulationError):
        trial.set_user_attr("error", str(result))
        values = [math.nan] * num_objectives
    else:
        values, summary = result
        for name, value in summary.items():
            trial.set_user_attr(name, value)
    return values if num_objectives > 1 else values[0]


def _progress_bar(enabled: bool, total: int):
    """Trials done; no total where the count is a stand-in for "until the timeout" (recommend's)."""
    return Phase("trials", total if total < 10_000 else None, unit="trials") if enabled else None


def _run_trials(study, config, objectives, space, *, trials, seeds, seed, timeout, progress, worker,
                refine_steps=0, refine_lr=0.1, batch=1, evaluator=None):
    import optuna

    evaluate = evaluator or Evaluator(objectives, seeds=seeds, seed=seed)
    interrupt = DeferredInterrupt(study)

    def objective_fn(trial):
        trial.set_user_attr("worker", worker)
        trial_config = suggest(trial, config, space)
        if refine_steps:
            trial.set_user_attr("suggested_policy", policy_dict(trial_config.policy))
            with interrupt.objective(trial):
                trial_config = refine(trial_config, objectives[0], space, steps=refine_steps,
                                       learning_rate=refine_lr, seeds=seeds, seed=seed + trial.number)
        trial.set_user_attr("policy", policy_dict(trial_config.policy))
        try:
            with interrupt.objective(trial):
                result = evaluate(trial_config)
        except SimulationError as err:
            result = err
        return _outcome(trial, result, len(objectives))

    finished = _finished_states()
    done = len(study.get_trials(deepcopy=False, states=finished))
    if batch > 1 and not refine_steps:
        if trials - done > 0:
            with interrupt.installed():
                _ask_tell(study, evaluate, config, objectives, space, trials=trials, batch=batch, timeout=timeout,
                          worker=worker, interrupt=interrupt, progress=progress)
        return evaluate.evaluations
    if trials - done > 0:
        bar = _progress_bar(progress, trials - done)
        tick = [] if bar is None else [lambda study, trial: bar.update()]
        with interrupt.installed():
            study.optimize(objective_fn, n_trials=trials - done, timeout=timeout, n_jobs=1, show_progress_bar=False,
                           gc_after_trial=False,
                           callbacks=[optuna.study.MaxTrialsCallback(trials, states=finished), *tick])
        if bar is not None:
            bar.close()
    return evaluate.evaluations


def _worker(config_dict, fixed, constraints, objective_names, space, trials, storage, study_name, seeds, seed, sampler,
            timeout, worker, refine_steps, refine_lr, batch, cache_dir):
    """One worker process of ``--workers N``: same study, its own sampler seed, and the parent's
    persistent compilation cache (a spawned process does not inherit JAX's settings), so a program
    one worker compiled is loaded, not compiled again, by the others and by the next run."""
    import jax
    import optuna

    if cache_dir:
        runtime.share_compilation_cache(cache_dir)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)

    from mixopt import config as config_mod

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from mixopt.families import make_family
    from mixopt.objectives import parse

    config = config_mod.from_dict(config_dict, fixed=fixed)
    family = make_family(config.scenario.family, config.scenario.truth, num_samples=config.scenario.samples)
    objectives = parse(",".join(objective_names), family.metric_names + ("human_used",))
    study = open_study(config, objectives, storage=storage, study_name=study_name, space=space, constraints=constraints,
                       sampler=_sampler(sampler, seed + worker, len(objectives) > 1))
    _run_trials(study, config, objectives, space, trials=trials, seeds=seeds, seed=seed, timeout=timeout,
                progress=False, worker=worker, refine_steps=refine_steps, refine_lr=refine_lr, batch=batch)


def _cache_dir() -> str | None:
    import jax

    return jax.config.jax_compilation_cache_dir


def optimize_search(config: Config, objectives: list[Objective], space: tuple[str, ...], *, trials: int,
                    storage: str | None, study_name: str, seeds: int, seed: int, sampler: str = "tpe",
                    timeout: float | None = None, progress: bool = False, workers: int = 1,
                    stale_after_s: float = 3600.0, refine_steps: int = 0, refine_lr: float = 0.1,
                    batch: int = 1, evaluator: "Evaluator | None" = None,
                    first_candidates: list[dict] | None = None, constraints: dict | None = None) -> SearchResult:
    """Runs the study until it holds ``trials`` finished trials (a re-run resumes it).

    With ``workers`` > 1, that many processes share the study (journal file, SQLite or PostgreSQL
    storage); each trial is stored once, whichever worker ran it. Every trial evaluates on the same
    seeds (common random numbers), whichever worker runs it. ``refine_steps`` > 0 makes it the
    ``hybrid`` method: each trial's continuous keys get that many gradient steps before evaluation,
    and the refined policy is what the trial stores (``suggested_policy`` keeps the starting point).
    ``batch`` > 1 asks that many trials at a time and evaluates those of one policy structure as one
    program, ``vmap`` over their policies (Optuna's ask/tell; not with ``hybrid``). ``evaluator``
    replaces the default one (e.g. a ``RobustEvaluator``; one worker). ``first_candidates``: trial
    parameters a new study evaluates first, before the baselines (a time-bounded search may not get
    further than those). ``constraints``: the user's fixed policy keys (``space.constraints``): part
    of the study's identity, and kept by the baselines it starts from (the search itself changes only
    the ``space`` keys, so it keeps them too).
    """
    if evaluator is not None and workers > 1:
        raise ConfigError("a custom evaluator runs in one worker process")
    if refine_steps and len(objectives) > 1:
        raise ConfigError("method hybrid takes one objective (its refinement is a gradient descent)")
    import multiprocessing

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(config, objectives, storage=storage, study_name=study_name, space=space, constraints=constraints,
                       sampler=_sampler(sampler, seed, len(objectives) > 1))
    fail_stale_trials(study, older_than_s=stale_after_s)
    if not study.trials:
        for params in [*(first_candidates or []), *baseline_params(config, space, constraints)]:
            study.enqueue_trial(params, skip_if_exists=True)
    runners = None
    if workers == 1:
        runners = None if evaluator else {}  # the default evaluator's compiled programs, for reuse
        evaluator = evaluator or Evaluator(objectives, seeds=seeds, seed=seed, compiled=runners)
        evaluations = _run_trials(study, config, objectives, space, trials=trials, seeds=seeds, seed=seed,
                                  timeout=timeout, progress=progress, worker=0, refine_steps=refine_steps,
                                  refine_lr=refine_lr, batch=batch, evaluator=evaluator)
    else:
        context = multiprocessing.get_context("spawn")  # JAX is not fork-safe
        names = [o.name for o in objectives]
        processes = [context.Process(target=_worker, args=(config.to_dict(), config.fixed, constraints, names, space,
                                                            trials, storage,
                                                            study_name, seeds, seed, sampler, timeout, i,
                                                            refine_steps, refine_lr, batch, _cache_dir()))
                     for i in range(workers)]
        for process in processes:
            process.start()
        for process in processes:
            process.join()
        if any(p.exitcode != 0 for p in processes):
            raise SimulationError(f"a worker of study {study_name!r} failed (exit codes "
                                  f"{[p.exitcode for p in processes]}); finished trials are stored, rerun to resume")
        evaluations = seeds * len(study.trials)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise SimulationError(f"study {study_name!r} has no completed trial (every policy degenerated)")
    best = study.best_trials[0] if len(objectives) > 1 else study.best_trial
    return SearchResult(with_policy(config, **policy_changes(best.user_attrs["policy"])), study, evaluations,
                        runners)
