"""The ``mixopt`` command line (DESIGN.md section 4): parse, call the API, format.

Bad input exits 2 with one line ``mixopt: error: ...``; a simulation that degenerates (NaN or
infinity) exits 1 with one line naming the metric and the generation. No tracebacks for either.
"""
import argparse
import os
import sys
from pathlib import Path

from mixopt.errors import ConfigError, MixoptError

FORMATS = ("table", "csv", "json")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse prints usage + message; the contract is one line
        raise ConfigError(message)


def _fraction_list(text: str):
    """``0.1`` or ``0.1,0.2,...`` (one value per generation)."""
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or a comma-separated list of numbers, got {text!r}")
    return values[0] if len(values) == 1 else values


def _budget(text: str):
    if text.strip().lower() in ("inf", "infinite", "infinity"):
        return "inf"
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'inf', got {text!r}")


# flag dest -> (table, key); "truth" keys go to [scenario.truth]
_FLAG_KEYS = {
    "family": ("scenario", "family"), "generations": ("scenario", "generations"),
    "samples": ("scenario", "samples"), "human_budget": ("scenario", "human_budget"),
    "dim": ("truth", "dim"), "estimator": ("truth", "estimator"), "fit": ("truth", "fit"),
    "vocab": ("truth", "vocab"), "zipf": ("truth", "zipf"), "source": ("truth", "source"),
    "capacity": ("truth", "capacity"), "smoothing": ("truth", "smoothing"),
    "temperature": ("truth", "temperature"), "top_p": ("truth", "top_p"), "minority": ("truth", "minority"),
    "minority_size": ("truth", "minority_size"), "noise": ("truth", "noise"), "design": ("truth", "design"),
    "ridge": ("truth", "ridge"), "components": ("truth", "components"), "em_steps": ("truth", "em_steps"),
    "length": ("truth", "length"), "width": ("truth", "width"), "train_steps": ("truth", "train_steps"),
    "train_lr": ("truth", "train_lr"),
    "train_optimizer": ("truth", "train_optimizer"), "verifier_noise": ("scenario", "verifier_noise"),
    "curation_fraction": ("policy", "curation_fraction"),
    "contamination": ("scenario", "contamination"),
    "detector_tpr": ("scenario", "detector_tpr"), "detector_fpr": ("scenario", "detector_fpr"),
    "provenance_filter": ("policy", "provenance_filter"),
    "human_fraction": ("policy", "human_fraction"), "human_weight": ("policy", "human_weight"),
    "human_source": ("policy", "human_source"), "retention": ("policy", "retention"),
    "window": ("policy", "window"), "seeds": ("run", "seeds"), "seed": ("run", "seed"),
    "sampler": ("run", "sampler"),
}


def _common(parser):
    parser.add_argument("--format", default="table", help="table (default), csv or json")
    parser.add_argument("--out", help="write the output to this file instead of standard output")
    parser.add_argument("--quiet", action="store_true", help="no progress output")


def _scenario_flags(sub):
    sub.add_argument("config", nargs="?", help="a TOML config ([scenario], [policy], [run] tables)")
    sub.add_argument("--family", help="model family: gaussian, categorical, gmm, neural or regression")
    sub.add_argument("--generations", type=int, help="T: generations after generation 0")
    sub.add_argument("--samples", type=int, help="M: samples per batch")
    sub.add_argument("--human-budget", type=_budget, help="fresh human samples that exist in total, or inf")
    sub.add_argument("--human-fraction", type=_fraction_list, help="lambda: human share of each batch, or one per generation")
    sub.add_argument("--human-weight", type=_fraction_list, help="share of the loss weight on human samples")
    sub.add_argument("--human-source", help="fresh or pool")
    sub.add_argument("--retention", help="replace, accumulate, window or subsample")
    sub.add_argument("--window", type=int, help="W for retention window")
    sub.add_argument("--seeds", type=int, help="Monte-Carlo repetitions")
    sub.add_argument("--seed", type=int, help="integer seed of the run")
    sub.add_argument("--sampler", help="exact (default where it applies) or naive")
    sub.add_argument("--policy", help="a JSON or TOML policy file (as optimize prints)")
    sub.add_argument("--dim", type=int, help="gaussian, regression: dimension; gmm: 1, 2 or 3")
    sub.add_argument("--estimator", help="gaussian: mle or unbiased")
    sub.add_argument("--fit", help="gaussian: full, or mean (variance known)")
    sub.add_argument("--vocab", type=int, help="categorical, neural: number of categories (tokens) V")
    sub.add_argument("--zipf", type=float, help="categorical, neural: Zipf exponent a (p_i ~ i^-a)")
    sub.add_argument("--source", help="categorical: zipf, or english (real word frequencies; the words extra)")
    sub.add_argument("--capacity", type=int, help="categorical: the model keeps only the K most frequent categories")
    sub.add_argument("--smoothing", type=float, help="categorical: add-alpha smoothing")
    sub.add_argument("--temperature", type=float, help="gaussian, categorical, gmm, neural: sampling temperature at synthesis")
    sub.add_argument("--top-p", type=float, help="categorical, neural: nucleus (top-p) truncation at synthesis")
    sub.add_argument("--minority", type=float, help="categorical: true mass share of a minority group")
    sub.add_argument("--minority-size", type=int, help="categorical: categories in the minority group")
    sub.add_argument("--components", type=int, help="gmm: the model's mixture components K")
    sub.add_argument("--em-steps", type=int, help="gmm: EM iterations per fit")
    sub.add_argument("--length", type=int, help="neural: tokens a sequence (vocab^length <= 4096)")
    sub.add_argument("--width", type=int, help="neural: hidden units of the MLP")
    sub.add_argument("--train-steps", type=int, help="neural: training steps per generation")
    sub.add_argument("--train-lr", type=float, help="neural: the trainer's learning rate")
    sub.add_argument("--train-optimizer", help="neural: adam (default) or sgd (smoother gradients for optimize)")
    sub.add_argument("--curation-fraction", type=_fraction_list,
                     help="share of each batch's synthetic samples the verifier keeps (1 = no curation)")
    sub.add_argument("--verifier-noise", type=float, help="curation: noise sd on the verifier's score")
    sub.add_argument("--contamination", type=_fraction_list,
                     help="share of each fresh human batch that is unlabelled synthetic data, or one per generation")
    sub.add_argument("--detector-tpr", type=float, help="provenance detector: P(flag | synthetic)")
    sub.add_argument("--detector-fpr", type=float, help="provenance detector: P(flag | human)")
    sub.add_argument("--provenance-filter", action="store_const", const=True,
                     help="drop the human-labelled samples the detector flags")
    sub.add_argument("--noise", type=float, help="regression: label noise sigma")
    sub.add_argument("--design", help="regression: fresh inputs each generation, or fixed (generation 0's)")
    sub.add_argument("--ridge", type=float, help="regression: ridge penalty (0 = ordinary least squares)")
    _common(sub)


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mixopt", description="Data-mixing strategy optimiser against model collapse.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _scenario_flags(commands.add_parser("simulate", help="simulate generations of training on mixed data"))
    opt = commands.add_parser("optimize", help="find the mixing policy that best resists collapse")
    _scenario_flags(opt)
    opt.add_argument("--method", default="optuna", help="gradient, optuna (default) or hybrid")
    opt.add_argument("--objective", default="final:kl", help="final:METRIC or mean:METRIC, comma-separated for several")
    opt.add_argument("--space", default="human_fraction", help="policy keys to optimise, comma-separated")
    opt.add_argument("--trials", type=int, default=50, help="optuna: finished trials the study should hold")
    opt.add_argument("--steps", type=int, default=200, help="gradient: optimiser steps")
    opt.add_argument("--learning-rate", type=float, default=0.05, help="gradient: learning rate")
    opt.add_argument("--optimizer", default="adam", help="gradient: adam, sgd, adamw or rmsprop")
    opt.add_argument("--refine-steps", type=int, default=30, help="hybrid: gradient steps inside each trial")
    opt.add_argument("--search", default="tpe", help="optuna sampler: tpe, cmaes, gp, random or nsga")
    opt.add_argument("--timeout", type=float, help="optuna: stop after this many seconds")
    opt.add_argument("--storage", help="journal file, sqlite:///PATH or postgresql://... (default mixopt-studies.log)")
    opt.add_argument("--study", help="study name (default: derived from the scenario and objective)")
    opt.add_argument("--workers", type=int, default=1, help="worker processes on one study")
    opt.add_argument("--batch", type=int, default=1,
                     help="optuna: trials asked at a time and simulated together (vmap over their policies)")
    opt.add_argument("--eval-seeds", type=int, default=2000, help="fresh seeds to re-evaluate the result and baselines")
    rec = commands.add_parser("recommend", help="the best known policy for a scenario, with its evidence")
    _scenario_flags(rec)
    rec.add_argument("--objective", default="final:kl", help="final:METRIC or mean:METRIC")
    rec.add_argument("--storage", help="where studies are stored (as for optimize)")
    rec.add_argument("--atlas", help="a policy atlas JSON (default: the one shipped with mixopt)")
    rec.add_argument("--no-atlas", action="store_true", help="do not answer from an atlas")
    rec.add_argument("--time-budget", type=float, default=20.0,
                     help="seconds for an optimisation when neither a study nor the atlas answers")
    rec.add_argument("--eval-seeds", type=int, default=1000, help="fresh seeds to evaluate an optimised answer")
    rec.add_argument("--uncertain", action="append", default=[], metavar="KEY=LO:HI",
                     help="optimise the expected objective over a range of a scenario key (contamination, "
                          "human_budget, detector_tpr, detector_fpr, verifier_noise or a truth key)")
    atlas = commands.add_parser("atlas", help="the policy atlas: recommendations precomputed over a grid")
    atlas_commands = atlas.add_subparsers(dest="atlas_command", required=True, parser_class=_Parser)
    build = atlas_commands.add_parser("build", help="optimise every grid scenario (resumable) and write the atlas")
    build.add_argument("--families", default="gaussian,categorical", help="comma-separated families of the grid")
    build.add_argument("--grid", default="default", help="default (small) or full")
    build.add_argument("--trials", type=int, default=40, help="optuna trials per grid scenario")
    build.add_argument("--seeds", type=int, default=128, help="seeds per trial")
    build.add_argument("--eval-seeds", type=int, default=1000, help="fresh seeds of each entry's report")
    build.add_argument("--workers", type=int, default=1, help="worker processes (grid scenarios in parallel)")
    build.add_argument("--storage", help="where the grid's studies are stored (as for optimize)")
    _common(build)
    bench = commands.add_parser("benchmark", help="scenarios x strategies against the baselines: tables, figures, report")
    bench.add_argument("--suite", default="default", help="smoke, default (a few minutes) or full")
    bench.add_argument("--seeds", type=int, help="Monte-Carlo seeds per strategy (default: the suite's)")
    bench.add_argument("--trials", type=int, help="trials of the optimised strategy's search (default: the suite's)")
    bench.add_argument("--format", default="table", help="the summary on standard output: table (markdown), csv, json")
    bench.add_argument("--out", help="folder for every table, figure and report.md (default mixopt-benchmark-SUITE)")
    bench.add_argument("--quiet", action="store_true", help="no progress output")
    return parser


def _overrides(args) -> dict:
    data: dict = {"scenario": {}, "policy": {}, "run": {}}
    for dest, (table, key) in _FLAG_KEYS.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        if table == "truth":
            data["scenario"].setdefault("truth", {})[key] = value
        else:
            data[table][key] = value
    return data


def enable_compilation_cache() -> None:
    import jax

    cache = os.environ.get("MIXOPT_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mixopt" / "jax"
    jax.config.update("jax_compilation_cache_dir", str(cache))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)


def _emit(text: str, out: str | None) -> None:
    if out:
        try:
            Path(out).write_text(text)
        except OSError as err:
            raise ConfigError(f"--out {out}: cannot write: {err.strerror}") from None
    else:
        sys.stdout.write(text)


def _load_config(args, *, compile_cache: bool = True):
    from mixopt import config as config_mod

    _check_format(args)
    config = config_mod.load(args.config, policy_file=args.policy, overrides=_overrides(args))
    if compile_cache:
        enable_compilation_cache()
    return config


def _check_format(args):
    if args.format not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got {args.format!r}")


def _simulate(args) -> None:
    from mixopt import report

    config = _load_config(args)
    from mixopt import montecarlo

    result = montecarlo.simulate(config)
    _emit(report.format_result(result, args.format), args.out)


def _optimize(args) -> None:
    from mixopt import optimizing, report

    config = _load_config(args)
    payload = optimizing.run(config, args, progress=sys.stderr.isatty() and not args.quiet)
    _emit(report.format_optimization(payload, args.format), args.out)


def _recommend(args) -> None:
    from mixopt import recommend, report

    config = _load_config(args, compile_cache=False)  # JAX only if an optimisation is needed
    progress = sys.stderr.isatty() and not args.quiet
    if args.uncertain:
        enable_compilation_cache()
        payload = recommend.recommend_uncertain(config, args.objective, args.uncertain, storage=args.storage,
                                                time_budget=args.time_budget, eval_seeds=args.eval_seeds,
                                                progress=progress)
    else:
        payload = recommend.recommend(config, args.objective, storage=args.storage, atlas_path=args.atlas,
                                      use_atlas=not args.no_atlas, time_budget=args.time_budget,
                                      eval_seeds=args.eval_seeds, progress=progress,
                                      on_compute=enable_compilation_cache)
    _emit(report.format_recommendation(payload, args.format), args.out)


def _atlas(args) -> None:
    from mixopt import atlas, report

    _check_format(args)
    enable_compilation_cache()
    payload = atlas.build(families=args.families, grid=args.grid, trials=args.trials, seeds=args.seeds,
                          eval_seeds=args.eval_seeds, workers=args.workers, storage=args.storage,
                          out=args.out, progress=sys.stderr.isatty() and not args.quiet)
    sys.stdout.write(report.format_atlas(payload, args.format))


def _benchmark(args) -> None:
    from mixopt import benchmark

    _check_format(args)
    enable_compilation_cache()
    out = args.out or f"mixopt-benchmark-{args.suite}"
    summary = benchmark.run(args.suite, out, seeds=args.seeds, trials=args.trials,
                            progress=sys.stderr.isatty() and not args.quiet)
    sys.stdout.write(benchmark.main_table(summary, args.format))
    print(f"wrote {out}/report.md, results.csv, summary.md and the figures", file=sys.stderr)


def main(argv=None) -> int:
    # XLA's C++ logs (e.g. notes on loading cached CPU executables) would break the one-line contract.
    # Forced, not defaulted: a parent that imported JAX has already set it to 1 in the environment.
    if not os.environ.get("MIXOPT_XLA_LOGS"):
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    from mixopt import interrupts

    interrupts.install()
    args = None
    try:
        args = make_parser().parse_args(argv)
        if args.command == "simulate":
            _simulate(args)
        elif args.command == "optimize":
            _optimize(args)
        elif args.command == "recommend":
            _recommend(args)
        elif args.command == "atlas":
            _atlas(args)
        elif args.command == "benchmark":
            _benchmark(args)
        return 0
    except ConfigError as err:
        print(f"mixopt: error: {err}", file=sys.stderr)
        return 2
    except MixoptError as err:
        print(f"mixopt: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        resumable = getattr(args, "command", None) in ("optimize", "atlas", "benchmark", "recommend")
        print("mixopt: interrupted" + ("; finished trials are stored, the same command resumes" if resumable else ""),
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
