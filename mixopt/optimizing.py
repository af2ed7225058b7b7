"""``mixopt optimize``: run a method, re-evaluate its policy on fresh seeds against the baselines.

Produces the JSON object of DESIGN.md section 4: ``policy``, ``objective``, ``human_used``,
``baselines``, ``source``.
"""
import hashlib
import json
import time

from mixopt.config import Config
from mixopt.errors import ConfigError
from mixopt.families import make_family
from mixopt.objectives import parse
from mixopt.optimize import optimize_gradient, optimize_search, parse_space
from mixopt.recommend import build_report, store_report

METHODS = ("gradient", "optuna", "hybrid")


def default_study_name(config: Config, objective_text: str, space: tuple[str, ...]) -> str:
    scenario = json.dumps(config.to_dict()["scenario"], sort_keys=True)
    digest = hashlib.sha1(f"{scenario}|{objective_text}|{','.join(space)}".encode()).hexdigest()[:10]
    return f"mixopt-{config.scenario.family}-{digest}"


def run(config: Config, args, *, progress: bool = False) -> dict:
    if args.method not in METHODS:
        raise ConfigError(f"--method must be one of {', '.join(METHODS)}, got {args.method!r}")
    for name in ("workers", "batch"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name} must be >= 1, got {getattr(args, name)}")
    for name in ("trials", "steps", "eval_seeds"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    family = make_family(config.scenario.family, config.scenario.truth, num_samples=config.scenario.samples)
    objectives = parse(args.objective, family.metric_names + ("human_used",))
    space = parse_space(args.space)
    seeds, seed = config.run.seeds, config.run.seed
    start = time.perf_counter()
    pareto = None
    if args.method == "gradient":
        if len(objectives) > 1:
            raise ConfigError("--method gradient takes one objective; use --method optuna --search nsga for several")
        result = optimize_gradient(config, objectives[0], space, steps=args.steps, learning_rate=args.learning_rate,
                                   seeds=seeds, seed=seed, optimizer=args.optimizer)
        study = None
    else:
        name = args.study or default_study_name(config, args.objective, space)
        result = optimize_search(config, objectives, space, trials=args.trials, storage=args.storage,
                                 study_name=name, seeds=seeds, seed=seed, sampler=args.search,
                                 timeout=args.timeout, progress=progress, workers=args.workers,
                                 refine_steps=args.refine_steps if args.method == "hybrid" else 0,
                                 refine_lr=args.learning_rate, batch=args.batch)
        study = name
        if len(objectives) > 1:  # the Pareto front of the study (quality vs cost or vs diversity)
            pareto = [{"policy": t.user_attrs["policy"], "values": dict(zip([o.name for o in objectives], t.values))}
                      for t in result.study.best_trials]
    elapsed = time.perf_counter() - start
    report = build_report(result.config, objectives[0], eval_seeds=args.eval_seeds, seed=seed,
                          start=result.start if args.method == "gradient" else None)
    if study is not None:  # what `mixopt recommend` reads back without recomputing
        store_report(result.study, objectives[0], report)
    return {
        **report,
        "source": "optimised",
        "method": args.method,
        "study": study,
        "simulator_evaluations": result.evaluations,
        "seconds": elapsed,
        **({"pareto": pareto} if pareto is not None else {}),
    }
