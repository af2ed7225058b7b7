"""The command line's flags (DESIGN.md section 4): one parser per command, flags in groups, and the
map from flags to config keys. The only place that knows argparse, with ``cli.main``."""
import argparse

from mixopt.cli.truth_flags import _family_flags
from mixopt.errors import ConfigError
from mixopt.serve.evaluation import MIN_EVAL_SEEDS, PRECISION

FORMATS = ("table", "csv", "json")


class _Help(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Shows a flag's default where it has one of its own (a scenario flag's default is the config's),
    and the examples (the epilog) as written."""

    def _get_help_string(self, action):
        if action.default in (None, False, [], argparse.SUPPRESS):
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):  # --help shows every default
        kwargs.setdefault("formatter_class", _Help)
        kwargs.setdefault("allow_abbrev", False)  # a typo (--generation) must not silently mean --generations
        super().__init__(*args, **kwargs)

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
    "train_optimizer": ("truth", "train_optimizer"), "spectrum": ("truth", "spectrum"), "signal": ("truth", "signal"),
    "compute": ("truth", "compute"), "epochs": ("truth", "epochs"), "learner_lr": ("truth", "lr"),
    "learner_batch": ("truth", "batch"), "learner_steps": ("truth", "steps"), "verifier_noise": ("scenario", "verifier_noise"),
    "curation_fraction": ("policy", "curation_fraction"),
    "contamination": ("scenario", "contamination"),
    "detector_tpr": ("scenario", "detector_tpr"), "detector_fpr": ("scenario", "detector_fpr"),
    "provenance_filter": ("policy", "provenance_filter"),
    "human_fraction": ("policy", "human_fraction"), "human_weight": ("policy", "human_weight"),
    "human_source": ("policy", "human_source"), "retention": ("policy", "retention"),
    "window": ("policy", "window"), "age_weight": ("policy", "age_weight"),
    "human_per_generation": ("scenario", "human_per_generation"), "train_size": ("scenario", "train_size"),
    "human_shelf_life": ("scenario", "human_shelf_life"), "seeds": ("run", "seeds"), "seed": ("run", "seed"),
    "sampler": ("run", "sampler"),
}


def _common(parser):
    group = parser.add_argument_group("output")
    group.add_argument("--format", default="table", help="table (default), csv or json")
    group.add_argument("--out", help=OUT_RULE.removeprefix("--out: "))
    group.add_argument("--quiet", action="store_true", help="no progress output")


def _scenario_flags(sub):
    """The config flags, in groups: scenario, the families' parameters, policy, run, output."""
    sub.add_argument("config", nargs="?", help="a TOML config ([scenario], [policy], [run] tables)")
    sub.add_argument("--policy", help="a JSON or TOML policy file (as optimize prints)")
    group = sub.add_argument_group("scenario (the world)")
    group.add_argument("--family", help="model family: gaussian, categorical, gmm, learner, neural or regression")
    group.add_argument("--generations", type=int, help="T: generations after generation 0")
    group.add_argument("--samples", type=int, help="M: samples per batch")
    group.add_argument("--human-budget", type=_budget,
                       help="fresh human samples that exist in total, generation 0's M included, or inf")
    group.add_argument("--human-per-generation", type=_budget, metavar="F",
                       help="the flow: F fresh human samples appear each generation (by generation t at most F t "
                            "beyond generation 0's can be bought), or inf (the budget is a stock: the default)")
    group.add_argument("--train-size", type=int, metavar="N",
                       help="each generation trains on at most N samples, drawn from what the retention keeps")
    group.add_argument("--human-shelf-life", type=int, metavar="L",
                       help="a human sample may be kept L generations at most (licences, deletion requests)")
    group.add_argument("--contamination", type=_fraction_list,
                       help="share of each fresh human batch that is unlabelled synthetic data, or one per generation")
    group.add_argument("--detector-tpr", type=float, help="provenance detector: P(flag | synthetic)")
    group.add_argument("--detector-fpr", type=float, help="provenance detector: P(flag | human)")
    group.add_argument("--verifier-noise", type=float, help="curation: noise sd on the verifier's score")
    _family_flags(sub)
    group = sub.add_argument_group("policy (the decisions for generations 1..T)")
    group.add_argument("--human-fraction", type=_fraction_list, help="lambda: human share of each batch, or one per generation")
    group.add_argument("--human-weight", type=_fraction_list, help="share of the loss weight on human samples")
    group.add_argument("--human-source", help="fresh or pool")
    group.add_argument("--retention", help="replace, accumulate, window, subsample or age")
    group.add_argument("--window", type=int, help="W for retention window (with --retention window only)")
    group.add_argument("--age-weight", type=float, metavar="GAMMA",
                       help="retention age: a batch of age a weighs GAMMA^a (0: replace, 1: accumulate)")
    group.add_argument("--curation-fraction", type=_fraction_list,
                       help="share of each batch's synthetic samples the verifier keeps (1 = no curation)")
    group.add_argument("--provenance-filter", action="store_const", const=True,
                       help="drop the human-labelled samples the detector flags")
    group = sub.add_argument_group("run (Monte Carlo)")
    group.add_argument("--seeds", type=int, help="Monte-Carlo repetitions")
    group.add_argument("--seed", type=int, help="integer seed of the run")
    group.add_argument("--sampler", help="exact (default where it applies) or naive")
    _common(sub)


def _atlas_flags(build):
    """The flags of ``mixopt atlas build``."""
    build.add_argument("--families", default="gaussian,categorical", help="comma-separated families of the grid")
    build.add_argument("--grid", default="default", help="default (small), full, or constrained (with flows)")
    build.add_argument("--retentions", default="free",
                       help="entries per retention constraint, comma-separated: free (the search chooses), replace, "
                            "accumulate, window, subsample, train-size (the retention free, a training set of 2M)")
    build.add_argument("--objectives", default="final",
                       help="entries per objective kind, comma-separated: final (the last generation), mean")
    build.add_argument("--add-to", metavar="ATLAS", help="keep this atlas's entries beside the new ones in --out")
    build.add_argument("--trials", type=int, default=40, help="optuna trials per grid scenario")
    build.add_argument("--seeds", type=int, default=128, help="seeds per trial")
    build.add_argument("--eval-seeds", type=int, default=1000, help="fresh seeds of each entry's report, at most")
    build.add_argument("--precision", type=float, default=PRECISION,
                       help="each report stops once every mean is known to this share of itself (95%% half-width), "
                            f"after at least --seeds and {MIN_EVAL_SEEDS} seeds, as recommend's does (default %(default)s); 0: every "
                            "--eval-seeds seed")
    build.add_argument("--workers", type=int, default=1, help="worker processes (grid scenarios in parallel)")
    build.add_argument("--storage", help="where the grid's studies are stored (as for optimize)")
    _common(build)


def _optimize_flags(opt):
    """The flags of ``mixopt optimize`` beyond the scenario's."""
    opt.add_argument("--method", default="optuna", help="gradient, optuna (default) or hybrid")
    opt.add_argument("--objective", default="final:kl", help="final:METRIC or mean:METRIC, comma-separated for several")
    opt.add_argument("--space", help="policy keys to optimise, comma-separated (default: human_allocation, the "
                     "budget's free allocation over generations, where the budget is finite; else human_fraction); "
                     "every policy key you set and do not list here is a constraint the answer keeps")
    opt.add_argument("--trials", type=int, default=50, help="optuna: finished trials the study should hold")
    opt.add_argument("--steps", type=int, default=200, help="gradient: optimiser steps")
    opt.add_argument("--learning-rate", type=float, default=0.05, help="gradient: learning rate")
    opt.add_argument("--optimizer", default="adam", help="gradient: adam, sgd, adamw or rmsprop")
    opt.add_argument("--start", default="best",
                     help="gradient: best (the best of the config's policy and the budget-matched heuristics, "
                          "fractions pulled inside [0.05, 0.95]) or config (the config's policy as it is)")
    opt.add_argument("--refine-steps", type=int, default=30, help="hybrid: gradient steps inside each trial")
    opt.add_argument("--search", default="tpe", help="optuna sampler: tpe, cmaes, gp, random or nsga")
    opt.add_argument("--timeout", type=float, help="optuna: stop after this many seconds")
    opt.add_argument("--storage", help="journal file, sqlite:///PATH or postgresql://... (default mixopt-studies.log)")
    opt.add_argument("--study", help="study name (default: derived from the scenario and objective)")
    opt.add_argument("--workers", type=int, default=1, help="worker processes on one study")
    opt.add_argument("--batch", type=int, default=1,
                     help="optuna: trials asked at a time and simulated together (vmap over their policies)")
    opt.add_argument("--eval-seeds", type=int, default=2000, help="fresh seeds to re-evaluate the result and baselines")


def _calibrate_flags(cal):
    cal.add_argument("measurements", help="a measurements TOML: the family, the keys to fit, observed runs")
    cal.add_argument("--predict", action="append", default=[], metavar="POLICY.toml",
                     help="predict this policy's curves in the fitted world (repeatable)")
    cal.add_argument("--out", help="write the calibrated config (a TOML that every command takes) here; an existing "
                                   "file is replaced whole")
    cal.add_argument("--figure", metavar="PNG", help="draw the measured points, the fit and the predictions here")
    cal.add_argument("--structural", action="append", default=[], metavar="METRIC=S",
                     help="a structural error s known from other systems (the forecasts of a family that is wrong "
                          "miss by N(0, s^2)); the prediction bands carry it at generations >= 1 where it exceeds "
                          "the one the runs give (repeatable; README: calibrate)")
    cal.add_argument("--seeds", type=int, default=200, help="common Monte-Carlo seeds of every candidate world")
    cal.add_argument("--seed", type=int, default=0, help="the seed of the search and of the common seeds")
    cal.add_argument("--steps", type=int, default=10, help="Levenberg-Marquardt steps after the search")
    cal.add_argument("--trials", type=int, default=40, help="optuna trials of the search over the fitted keys")
    cal.add_argument("--format", default="table", help="table (default), csv or json, on standard output")
    cal.add_argument("--quiet", action="store_true", help="no progress output")


EXAMPLES = {
    "simulate": """examples:
  mixopt simulate --generations 20 --samples 100 --seeds 1000
  mixopt simulate config.toml --retention accumulate --format csv --out runs.csv""",
    "optimize": """examples:
  mixopt optimize --generations 10 --samples 50 --human-budget 150 --trials 40
  mixopt optimize config.toml --retention replace --space human_allocation --objective mean:kl
  (every policy key you set and do not list in --space is a constraint the answer keeps)""",
    "recommend": """examples:
  mixopt recommend --family gaussian --generations 10 --samples 100 --human-budget 300
  mixopt recommend config.toml --retention replace          # keep your retention rule
  mixopt recommend config.toml --target 'final:kl<=0.005'   # quote it: < and > are shell redirects
  mixopt recommend calibrated.toml --uncertain""",
    "benchmark": """examples:
  mixopt benchmark --suite smoke
  mixopt benchmark --suite my-suite.toml --out results/""",
    "calibrate": """examples:
  mixopt calibrate measured.toml --predict accumulate.toml --out calibrated.toml --figure fit.png""",
}
OUT_RULE = ("--out: write here instead of standard output; an existing file is replaced whole (written "
            "beside it, then renamed)")


def make_parser() -> argparse.ArgumentParser:
    from importlib.metadata import PackageNotFoundError, version

    parser = _Parser(prog="mixopt", description="Data-mixing strategy optimiser against model collapse.")
    try:
        parser.add_argument("--version", action="version", version=f"mixopt {version('mixopt')}")
    except PackageNotFoundError:  # running from a checkout that was never installed
        parser.add_argument("--version", action="version", version="mixopt (not installed)")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _scenario_flags(commands.add_parser("simulate", help="simulate generations of training on mixed data",
                                        epilog=EXAMPLES["simulate"]))
    opt = commands.add_parser("optimize", help="find the mixing policy that best resists collapse",
                              epilog=EXAMPLES["optimize"])
    _scenario_flags(opt)
    _optimize_flags(opt)
    rec = commands.add_parser("recommend", help="the best known policy for a scenario, with its evidence",
                              epilog=EXAMPLES["recommend"])
    _scenario_flags(rec)
    rec.add_argument("--objective", default="final:kl", help="final:METRIC or mean:METRIC")
    rec.add_argument("--storage", help="where studies are stored (as for optimize)")
    rec.add_argument("--atlas", help="a policy atlas JSON (default: the one shipped with mixopt)")
    rec.add_argument("--no-atlas", action="store_true", help="do not answer from an atlas")
    rec.add_argument("--time-budget", type=float, default=20.0,
                     help="seconds for an optimisation when neither a study nor the atlas answers")
    rec.add_argument("--eval-seeds", type=int, default=1000, help="fresh seeds to evaluate an optimised answer")
    rec.add_argument("--target", metavar="METRIC<=VALUE",
                     help="how much human data must we keep: the least human budget whose best simple heuristic "
                          "meets the target with its 95%% CI (e.g. 'final:kl<=0.01', quoted; >= for a maximised "
                          "metric); exit 1 when no budget meets it")
    rec.add_argument("--uncertain", action="append", default=[], metavar="KEY=LO:HI", nargs="?", const="calibrated",
                     help="optimise the expected objective over a range of a scenario key (contamination, "
                          "human_budget, detector_tpr, detector_fpr, verifier_noise, samples or a truth key); "
                          "with no range, the intervals of a config written by mixopt calibrate")
    atlas = commands.add_parser("atlas", help="the policy atlas: recommendations precomputed over a grid")
    atlas_commands = atlas.add_subparsers(dest="atlas_command", required=True, parser_class=_Parser)
    build = atlas_commands.add_parser("build", help="optimise every grid scenario (resumable) and write the atlas")
    _atlas_flags(build)
    _calibrate_flags(commands.add_parser("calibrate", help="fit the world to your own measurements, predict other policies",
                                         epilog=EXAMPLES["calibrate"]))
    bench = commands.add_parser("benchmark", help="scenarios x strategies against the baselines: tables, figures, report",
                                epilog=EXAMPLES["benchmark"])
    bench.add_argument("--suite", default="default",
                       help="smoke, default (a few minutes), constrained (where optimising pays under pipeline "
                            "limits), full, or a suite file FILE.toml (your own scenarios)")
    bench.add_argument("--seeds", type=int, help="Monte-Carlo seeds per strategy (default: the suite's)")
    bench.add_argument("--trials", type=int, help="trials of the optimised strategy's search (default: the suite's)")
    bench.add_argument("--format", default="table", help="the summary on standard output: table (markdown), csv, json")
    bench.add_argument("--out", help="folder for every table, figure and report.md (default mixopt-benchmark-SUITE)")
    bench.add_argument("--quiet", action="store_true", help="no progress output")
    return parser


def overrides(args) -> dict:
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
