"""The ``mixopt`` command line (DESIGN.md section 4): parse, call the API, format.

Bad input exits 2 with one line ``mixopt: error: ...``; a simulation that degenerates (NaN or
infinity) exits 1 with one line naming the metric and the generation. No tracebacks for either.
"""
import os
import re
import sys
import time
from pathlib import Path

from mixopt.cli.parser import FORMATS, make_parser, overrides
from mixopt.errors import ConfigError, MixoptError
from mixopt.runtime import enable_compilation_cache

def _emit(text: str, out: str | None) -> None:
    """Standard output, or ``--out``: one rule for every command, an existing file is replaced whole
    (written beside it, then renamed: an interrupted write never leaves half a file)."""
    if out:
        tmp = Path(out).with_name(Path(out).name + ".tmp")
        try:
            tmp.write_text(text)
            os.replace(tmp, out)
        except OSError as err:
            raise ConfigError(f"--out {out}: cannot write: {err.strerror}") from None
    else:
        sys.stdout.write(text)


def _check_out(out: str | None) -> None:
    """``--out`` must be writable before anything is computed."""
    if not out:
        return
    folder = Path(out).parent
    if not folder.is_dir():
        raise ConfigError(f"--out {out}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or Path(out).is_dir():
        raise ConfigError(f"--out {out}: cannot write there")


def _load_config(args, *, compile_cache: bool = True):
    from mixopt import config as config_mod

    _check_format(args)
    _check_out(getattr(args, "out", None))
    config = config_mod.load(args.config, policy_file=args.policy, overrides=overrides(args))
    searched = [k.strip() for k in (getattr(args, "space", None) or "").split(",")]
    if args.window is not None and config.policy.retention != "window" and "retention" not in searched:
        raise ConfigError(f"--window {args.window} applies to retention window only, and the retention is "
                          f"{config.policy.retention!r}: add --retention window, or drop --window")
    if (getattr(args, "age_weight", None) is not None and config.policy.retention != "age"
            and not {"retention", "age_weight"} & set(searched)):
        raise ConfigError(f"--age-weight {args.age_weight} applies to retention age only, and the retention is "
                          f"{config.policy.retention!r}: add --retention age, or drop --age-weight")
    if compile_cache:
        enable_compilation_cache()
    return config


def _check_format(args):
    if args.format not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got {args.format!r}")


def _simulate(args) -> None:
    config = _load_config(args)  # bad input fails before JAX is imported; pandas is not
    from mixopt import montecarlo
    from mixopt.cli.trajectory_format import format_result

    result = montecarlo.simulate(config)
    _emit(format_result(result, args.format), args.out)


def _optimize(args) -> None:
    config = _load_config(args)  # bad input fails before JAX and pandas are imported
    import mixopt.cli.format as fmt
    from mixopt.serve.optimize import optimize

    options = {name: getattr(args, name) for name in (
        "objective", "method", "space", "trials", "steps", "learning_rate", "optimizer", "refine_steps", "search",
        "timeout", "storage", "study", "workers", "batch", "eval_seeds", "start")}
    payload = optimize(config, **options, progress=not args.quiet)
    _emit(fmt.format_optimization(payload, args.format), args.out)


def _recommend(args) -> None:
    config = _load_config(args, compile_cache=False)  # JAX only if an optimisation is needed
    import mixopt.cli.format as fmt
    from mixopt.serve import recommend, uncertain

    progress = not args.quiet
    if args.target:
        if args.uncertain:
            raise ConfigError("--target and --uncertain do not combine: ask one question at a time")
        from mixopt.families import make_family
        from mixopt.serve.target import least_budget, parse_target

        family = make_family(config.scenario.family, config.scenario.truth, num_samples=config.scenario.samples)
        target = parse_target(args.target, family.metric_names + ("human_used",))
        enable_compilation_cache()
        report = None if args.quiet else (lambda line: print(f"mixopt: {line}", file=sys.stderr, flush=True))
        payload = least_budget(config, target, seeds=args.eval_seeds, seed=config.run.seed, progress=report)
        _emit(fmt.format_target(payload, args.format), args.out)
        if not payload["met"]:  # answered, but not met: a script must be able to tell
            print(f"mixopt: target not met: {payload['reason']}", file=sys.stderr)
            return 1
        return 0
    if args.uncertain:
        args.uncertain = _calibrated_ranges(args)
        enable_compilation_cache()
        payload = uncertain.recommend_uncertain(config, args.objective, args.uncertain, storage=args.storage,
                                                time_budget=args.time_budget, eval_seeds=args.eval_seeds,
                                                progress=progress, started=args.started)
    else:
        payload = recommend.recommend(config, args.objective, storage=args.storage, atlas_path=args.atlas,
                                      use_atlas=not args.no_atlas, time_budget=args.time_budget,
                                      eval_seeds=args.eval_seeds, progress=progress,
                                      on_compute=enable_compilation_cache, started=args.started)
    _emit(fmt.format_recommendation(payload, args.format), args.out)
    return 0


def _calibrated_ranges(args) -> list[str]:
    """``--uncertain`` with no range: the intervals a ``mixopt calibrate --out`` config keeps."""
    if "calibrated" not in args.uncertain:
        return args.uncertain
    from mixopt import config as config_mod

    table = config_mod.read_file(args.config).get("calibration", {}) if args.config else {}
    ranges = table.get("uncertain") if isinstance(table, dict) else None
    if not ranges:
        raise ConfigError("--uncertain without KEY=LO:HI needs a config written by mixopt calibrate --out "
                          "(its [calibration] table holds the fitted intervals)")
    return [spec for spec in args.uncertain if spec != "calibrated"] + list(ranges)


def _atlas(args) -> None:
    import mixopt.cli.format as fmt
    from mixopt.serve import atlas

    _check_format(args)
    enable_compilation_cache()
    payload = atlas.build(families=args.families, grid=args.grid, trials=args.trials, seeds=args.seeds,
                          eval_seeds=args.eval_seeds, workers=args.workers, storage=args.storage,
                          out=args.out, progress=not args.quiet, retentions=args.retentions,
                          objectives=args.objectives, add_to=args.add_to, precision=args.precision)
    sys.stdout.write(fmt.format_atlas(payload, args.format))


def _benchmark(args) -> None:
    import mixopt.cli.format as fmt
    from mixopt.serve import benchmark

    _check_format(args)
    enable_compilation_cache()
    out = args.out or f"mixopt-benchmark-{args.suite}"
    summary = benchmark.run(args.suite, out, seeds=args.seeds, trials=args.trials,
                            progress=not args.quiet)
    sys.stdout.write(fmt.main_table(summary, args.format))
    print(f"wrote {Path(out) / 'report.md'}, results.csv, summary.md and the figures", file=sys.stderr)


def _calibrate(args) -> None:
    from mixopt.calibration import measurements

    _check_format(args)
    for path in (args.out, args.figure):
        _check_out(path)
    measured = measurements.load(args.measurements)  # bad input fails before JAX is imported
    predict = [measurements.load_policy(path) for path in args.predict]
    structural = _structural(args.structural, measured)
    enable_compilation_cache()
    from mixopt.calibration import predict as predict_mod
    from mixopt.calibration.report import calibrate
    from mixopt.cli.calibration_format import format_calibration

    payload = calibrate(measured, predict=predict, seeds=args.seeds, seed=args.seed, steps=args.steps,
                        trials=args.trials, progress=not args.quiet, structural=structural)
    if args.out:
        _emit(predict_mod.config_text(payload, args.measurements), args.out)
    if args.figure:
        predict_mod.figure(payload, args.figure)
    sys.stdout.write(format_calibration(payload, args.format))


def _structural(pairs: list, measured) -> dict:
    """``--structural METRIC=S`` flags as {metric: s}, checked against the measured metrics (before JAX)."""
    from mixopt.calibration.discrepancy import check_given

    given = {}
    for pair in pairs:
        metric, sep, value = pair.partition("=")
        if not sep or not metric.strip():
            raise ConfigError(f"--structural {pair}: expected METRIC=S, e.g. test_error=0.1")
        given[metric.strip()] = value.strip()
    return check_given(given, sorted({m.name for run in measured.runs for m in run.metrics}))


def _in_flags(message: str, argv) -> str:
    """A library error names its argument (``time_budget must be > 0``); the command line says the
    flag (``--time-budget must be > 0``)."""
    word = re.match(r"[a-z_]+(?=[ :])", message)
    if word is None:
        return message
    flag = "--" + word.group(0).replace("_", "-")
    command = next((a for a in (argv if argv is not None else sys.argv[1:]) if not a.startswith("-")), None)
    parser = make_parser()
    sub = parser._subparsers._group_actions[0].choices.get(command, parser)
    known = {flag for action in sub._actions for flag in action.option_strings}
    return flag + message[word.end():] if flag in known else message


def main(argv=None) -> int:
    started = time.perf_counter()  # a --time-budget is a promise about the whole command's wall time
    # XLA's C++ logs (e.g. notes on loading cached CPU executables) would break the one-line contract.
    # Forced, not defaulted: a parent that imported JAX has already set it to 1 in the environment.
    if not os.environ.get("MIXOPT_XLA_LOGS"):
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    from mixopt import runtime

    runtime.install()
    args = None
    try:
        args = make_parser().parse_args(argv)
        args.started = started
        from mixopt import progress

        progress.enable(not getattr(args, "quiet", False))  # on stderr; plain lines when not a terminal
        if args.command == "simulate":
            _simulate(args)
        elif args.command == "optimize":
            _optimize(args)
        elif args.command == "recommend":
            return _recommend(args)
        elif args.command == "atlas":
            _atlas(args)
        elif args.command == "benchmark":
            _benchmark(args)
        elif args.command == "calibrate":
            _calibrate(args)
        return 0
    except ConfigError as err:
        print(f"mixopt: error: {_in_flags(str(err), argv)}", file=sys.stderr)
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
