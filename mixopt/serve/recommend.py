"""``mixopt recommend``: a scenario in, the best known policy out, with its evidence.

Where the answer comes from, in order (the payload's ``source``):

The policy keys the config or the flags set are the user's constraints (``space.constraints``):
every source below answers only within them, and the payload lists them.

1. ``study``: a stored study for the same scenario, constraints and objective that holds a report (``mixopt
   optimize``, ``atlas build`` and earlier recommendations write one). Read from the storage; nothing
   is simulated, and JAX is not imported.
2. ``atlas``: the nearest entry of a policy atlas (the one shipped with the package, or ``--atlas
   PATH``) built for the same family, truth, batch size, objective and constraints, when the scenario lies inside
   the atlas's grid of horizons, budgets and contamination levels. The payload says which entry and
   how near; its numbers are the entry's, measured in the entry's scenario.
3. ``optimised``: a bounded Optuna search (``time_budget`` seconds) over the budget's allocation
   and the retention rule (less what the constraints fix: ``space.recommend_space``), re-evaluated on fresh seeds against the baselines, and stored as
   a study with its report, so the next query for this scenario is answered from storage.

A report is the JSON object of DESIGN.md section 4 (``policy``, ``objective``, ``human_used``,
``baselines``, ``source``) plus ``description`` (the policy in words), ``trajectory`` (the objective's
metric per generation with a 95% CI, for the policy and for each baseline) and ``scenario``.
"""
import time

from mixopt.config import Config
from mixopt.errors import ConfigError
from mixopt.objectives import Objective, parse
from mixopt.serve.atlas import atlas_miss, from_atlas, load_atlas
from mixopt.serve.evaluation import PRECISION, floor, record
from mixopt.optimizers.constraints import constraints as constraints_of, recommend_space
from mixopt.store import default_study_name, from_storage, store_report



SEARCH_SHARE = 0.5  # of the time budget; the rest re-evaluates the answer and the baselines
EVALUATION_END = 0.85  # the evaluation stops (after a round of chunks) by this share of the budget:
# the rest is for the round that crosses it, storing the study and writing the answer
LIMIT_END = 0.95  # no round of the evaluation, even one short of MIN_EVAL_SEEDS, is started that would end
# past this share: the time budget is a promise about the whole process's wall time


def answer_source(report: dict) -> str:
    """``optimised``, or ``heuristic`` where the optimised policy did not beat the best budget-matched
    baseline beyond its CI and that baseline is the answer (``build_report``'s fallback)."""
    return "heuristic" if report.get("answer") == "heuristic" else "optimised"


def optimise(config: Config, objective: Objective, *, storage: str | None, time_budget: float, eval_seeds: int,
             trials: int = 10_000, progress: bool = False, study_name: str | None = None,
             started: float | None = None, constraints: dict | None = None) -> dict:
    """A time-bounded Optuna search, its best policy re-evaluated and stored as the study's report.

    The whole answer keeps to ``time_budget`` seconds of wall time from ``started``
    (``time.perf_counter()``; the CLI passes its own start): the search gets ``SEARCH_SHARE`` of it,
    the re-evaluation runs until ``EVALUATION_END`` of it, on the search's compiled programs and in
    chunks of the search's seeds (at least ``MIN_EVAL_SEEDS``), or until every mean is known to
    ``PRECISION``. ``budget`` in the payload says what ran: the trials that finished, the seconds,
    the evaluation seeds, and whether the time budget cut the evaluation short.
    """
    import optuna

    started = time.perf_counter() if started is None else started
    from mixopt.optimizers.search import optimize_search
    from mixopt.optimizers.evaluate import build_report

    space = recommend_space(constraints or {})
    name = study_name or default_study_name(config, objective.name, space, constraints=constraints)
    result = optimize_search(config, [objective], space, trials=trials, storage=storage, study_name=name,
                             seeds=config.run.seeds, seed=config.run.seed, progress=progress,
                             timeout=max(0.1, SEARCH_SHARE * time_budget - (time.perf_counter() - started)),
                             constraints=constraints)
    searched = time.perf_counter() - started
    done = [t for t in result.study.trials if t.datetime_start and t.datetime_complete]
    # a trial's longest run in this search: its program's compile (and a run) on this machine, now
    compile_s = max([(t.datetime_complete - t.datetime_start).total_seconds() for t in done], default=0.0)
    report = build_report(result.config, objective, eval_seeds=eval_seeds, seed=config.run.seed,
                          chunk=config.run.seeds, runners=result.runners,
                          deadline=started + EVALUATION_END * time_budget, limit=started + LIMIT_END * time_budget,
                          min_seeds=floor(eval_seeds, config.run.seeds),
                          precision=PRECISION, constraints=constraints, compile_s=compile_s)
    evaluation = record(report, eval_seeds, PRECISION)  # stored with it: the atlas reuses only a finished one
    store_report(result.study, objective, {**report, "evaluation": evaluation})
    used, precise = report["objective"]["eval_seeds"], evaluation["precise"]
    finished = len(result.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,
                                                                   optuna.trial.TrialState.FAIL)))
    budget = {"time_budget": time_budget, "search_seconds": round(searched, 2),
              "seconds": round(time.perf_counter() - started, 2), "trials": finished,
              "eval_seeds": used, "eval_seeds_asked": eval_seeds, "precise": precise,
              "cut_short": used < eval_seeds and not precise,
              "not_evaluated": [r["name"] for r in report["baselines"] if r.get("not_evaluated")]}
    return {**report, "source": answer_source(report), "study": name, "trials": finished, "budget": budget}


def recommend(config: Config, objective_text: str, *, storage: str | None = None, atlas_path=None,
              time_budget: float = 20.0, eval_seeds: int = 1000, use_atlas: bool = True,
              progress: bool = False, on_compute=None, started: float | None = None) -> dict:
    """The recommendation for ``config``'s scenario within the policy keys it fixed (its constraints):
    study, atlas or optimised."""
    if not time_budget > 0:
        raise ConfigError(f"time_budget must be > 0 seconds, got {time_budget!r}")
    if eval_seeds < 2:
        raise ConfigError(f"eval_seeds must be >= 2, got {eval_seeds}")
    objectives = parse(objective_text, None)
    if len(objectives) > 1:
        raise ConfigError("recommend takes one objective (optimize with search nsga gives a Pareto front)")
    objective = objectives[0]
    fixed = constraints_of(config)
    if not recommend_space(fixed):
        raise ConfigError(f"every policy key a recommendation chooses is fixed ({', '.join(fixed)}): nothing is "
                          "left to recommend; drop one, or mixopt simulate your policy")
    found = from_storage(config, objective, storage, fixed)
    missed = "no stored study for this scenario and constraints; --no-atlas"
    if found is None and use_atlas:
        shipped = load_atlas(atlas_path)
        found = from_atlas(config, objective, shipped, fixed)
        missed = ("no stored study for this scenario and constraints; "
                  + (atlas_miss(config, objective, shipped, fixed) if found is None else ""))
    if found is not None:
        return found
    started = time.perf_counter() if started is None else started  # the CLI's: the whole process counts
    if on_compute is not None:
        on_compute()  # e.g. the CLI's persistent compilation cache, set up only when JAX is needed
    from mixopt.families import make_family

    family = make_family(config.scenario.family, config.scenario.truth, num_samples=config.scenario.samples)
    objective = parse(objective_text, family.metric_names + ("human_used",))[0]  # the family check
    answer = optimise(config, objective, storage=storage, time_budget=time_budget, eval_seeds=eval_seeds,
                      progress=progress, started=started, constraints=fixed)
    return {**answer, "why_optimised": missed}
