"""Calibration examples (issue 13): fit a family to measured curves under one policy, predict others,
and score the predictions against two naive ones (no change from the observed policy; the
uncalibrated default world).

    python -m experiments.calibration.run known    # (a) a known truth: measurements simulated, noise added
    python -m experiments.calibration.run neural   # (b) the neural family measured, categorical fitted
    python -m experiments.calibration.run real     # (c) published curves of real models (data/real-curves.csv)
    python -m experiments.calibration.run real-learner  # (d) the same curves, fitted with the learner family

Each writes its measurement files (``*.toml`` here: ``mixopt calibrate`` takes them as they are),
a CSV of the scores and a figure per fit under ``--out``.
"""
import argparse
import re
from pathlib import Path

import numpy as np
import pandas as pd

from mixopt.calibration import measurements as measurements_mod
from mixopt.calibration import predict as predict_mod
from mixopt.calibration.report import calibrate
from mixopt.calibration.world import World

HERE = Path(__file__).parent
POLICIES = {"accumulate": {"retention": "accumulate"}, "fresh10": {"human_fraction": 0.1, "retention": "replace"},
            "accumulate-subsample": {"retention": "subsample"}}
FIT = {"zipf": [0.5, 2.5], "smoothing": [0.001, 1.0], "temperature": [0.7, 1.3]}
# Real curves have 5 points per model in Gerstgrasser et al.: two shape keys and the link's a and b
# leave a degree of freedom to test the fit (sampling at temperature 1, as both papers do).
FIT_REAL = {"zipf": [0.5, 2.5], "smoothing": [0.001, 1.0]}
DEFAULT_WORLD = {"zipf": 1.1, "smoothing": 0.01, "temperature": 1.0}  # categorical defaults (smoothing: kl finite)
# (d) the learner (issue 29): d = 50 power-law features, M = 200 a generation, one epoch of batches of 10
# by default; fitted: the epochs (how under-trained generation 0 is), the label noise, the spectrum and
# the signal's decay. A 5-point curve (Gerstgrasser et al.) cannot carry four keys and the link's two:
# there the spectrum and signal are held at the values the 50-generation curves chose (steep, 4; b = 1).
LEARNER = {"family": "learner", "samples": 200, "truth": {"dim": 50}, "metric": "test_error",
           "fit": {"epochs": [0.05, 20.0], "noise": [0.05, 5.0], "spectrum": [0.0, 6.0], "signal": [0.0, 3.0]},
           "short": {"epochs": [0.05, 20.0], "noise": [0.05, 5.0]}, "held": {"spectrum": 4.0, "signal": 1.0}}
CATEGORICAL = {"family": "categorical", "samples": 1000, "truth": {"vocab": 1000}, "metric": "kl", "fit": FIT_REAL,
               "short": FIT_REAL, "held": {}}


def metric_table(name, generations, values, stderr, link="identity") -> dict:
    return {"name": name, "link": link, "generation": [int(g) for g in generations],
            "value": [round(float(v), 6) for v in values], "stderr": [float(f"{s:.3g}") for s in stderr]}


def score(payload: dict, observed: dict, truth: dict, naive_default: dict | None, label: str) -> list[dict]:
    """RMSE (generations >= 1) of the calibrated prediction and of the naive ones (no change: the observed
    curve; flat: the observed generation 0; the default world where given), per policy and metric, and the
    share of true points inside the 90% prediction interval."""
    rows = []
    pred = pd.DataFrame(payload["predictions"])
    for (policy, metric), group in pred.groupby(["policy", "metric"], sort=False):
        if (policy, metric) not in truth:
            continue
        gens, values, *_ = truth[(policy, metric)]
        later = gens >= 1
        group = group.set_index("generation")
        mean = group.loc[gens[later], "mean"].to_numpy()
        inside = ((group.loc[gens[later], "pi_low"].to_numpy() <= values[later])
                  & (values[later] <= group.loc[gens[later], "pi_high"].to_numpy()))
        obs_g, obs_v = observed[metric]
        no_change = np.interp(gens[later], obs_g, obs_v)
        rmse = lambda forecast: float(np.sqrt(np.mean((forecast - values[later]) ** 2)))  # noqa: E731
        row = {"case": label, "policy": policy, "metric": metric, "points": int(later.sum()),
               "rmse_calibrated": rmse(mean), "rmse_no_change": rmse(no_change), "rmse_flat": rmse(obs_v[0])}
        if naive_default is not None:
            row["rmse_default_world"] = rmse(naive_default[(policy, metric)][gens[later]])
        structural = (payload.get("discrepancy", {}).get("scale") or {}).get(metric)
        rows.append({**row, "inside_90pi": float(inside.mean()), "structural_s": structural,
                     "verdict": payload["verdict"][:60]})
    return rows


def held_out_points(payload: dict, truth: dict) -> pd.DataFrame:
    """Each held-out measured point (generations >= 1) beside its forecast: ``measured``, ``stderr`` (the
    read-off error where known), ``mean``, ``pi_low``, ``pi_high``, ``structural_sd`` (the band's own
    variance is ((pi_high - pi_low) / 2 / z)^2 less structural_sd^2): what transfer.py pools."""
    pred = pd.DataFrame(payload["predictions"]).set_index(["policy", "metric", "generation"])
    rows = []
    for (policy, metric), (gens, values, *rest) in truth.items():
        stderr = rest[0] if rest else np.full(len(gens), np.nan)
        for g, v, se in zip(gens, values, stderr):
            if g >= 1 and (policy, metric, g) in pred.index:
                row = pred.loc[(policy, metric, g)]
                rows.append({"policy": policy, "metric": metric, "generation": int(g), "measured": float(v),
                             "stderr": float(se), **{k: float(row[k]) for k in ("mean", "pi_low", "pi_high",
                                                                              "structural_sd")}})
    return pd.DataFrame(rows)


def default_world(measured, observed_first: dict, policies: dict, links: dict) -> dict:
    """The uncalibrated prediction: the default categorical world, an affine link anchored at the
    measured generation 0 (a = y_0 - metric_0, b = 1)."""
    world = World(measured, seeds=200, seed=1)
    out = {}
    for name, policy in policies.items():
        curves = world.curves({k.name: DEFAULT_WORLD.get(k.name, k.low) for k in measured.fit}, policy)
        for metric, link in links.items():
            shift = observed_first[metric] - curves[metric].mean[0] if link == "affine" else 0.0
            out[(name, metric)] = curves[metric].mean + shift
    return out


def fit_and_score(path: Path, label: str, truth: dict, predict: dict, out: Path, args,
                  default: bool = True) -> tuple[dict, list[dict]]:
    measured = measurements_mod.load(path)
    payload = calibrate(measured, predict=list(predict.items()), seeds=args.seeds, trials=args.trials,
                        steps=args.steps, progress=False)
    predict_mod.figure(payload, out / f"{label}.png", held_out={k: v[:2] for k, v in truth.items()})
    held_out_points(payload, truth).to_csv(out / f"{label}-points.csv", index=False)
    run = measured.runs[0]
    observed = {m.name: (m.generation, m.value) for m in run.metrics}
    first = {m.name: float(m.value[0]) for m in run.metrics}
    naive = default_world(measured, first, predict, {m.name: m.link for m in run.metrics}) if default else None
    return payload, score(payload, observed, truth, naive, label)


def known(args, out: Path) -> list[dict]:
    """(a) Measurements simulated from a known categorical world (2000 seeds, N(0, 0.003^2) noise added)."""
    truth_world = {"zipf": 1.2, "temperature": 0.9}
    scenario = {"generations": 6, "samples": 1000, "truth": {"vocab": 1000, "smoothing": 0.01}}
    skeleton = {"family": "categorical", "fit": {"zipf": FIT["zipf"], "temperature": FIT["temperature"]},
                "scenario": scenario, "run": [{"name": "replace", "policy": {"retention": "replace"}, "metric": [
                    metric_table(m, range(7), [0] * 7, [0.003] * 7) for m in ("entropy_ratio", "kl")]}]}
    world = World(measurements_mod.parse(skeleton), seeds=2000, seed=12345)
    rng = np.random.default_rng(0)
    curves = world.curves(truth_world, {"retention": "replace"})
    for metric in skeleton["run"][0]["metric"]:
        metric["value"] = [round(float(v), 6) for v in curves[metric["name"]].mean + rng.normal(0, 0.003, 7)]
    path = HERE / "known-truth.toml"
    path.write_text("# (a) known truth: categorical V = 1000, M = 1000, zipf 1.2, temperature 0.9, smoothing 0.01;\n"
                    "# replace measured on 2000 seeds, N(0, 0.003^2) noise added (experiments/calibration/run.py known)\n"
                    + predict_mod.measurements_text(skeleton))
    predict = {k: POLICIES[k] for k in ("accumulate", "fresh10")}
    truth = {}
    for name, policy in predict.items():
        c = world.curves(truth_world, policy)
        truth.update({(name, m): (np.arange(7), c[m].mean) for m in ("entropy_ratio", "kl")})
    payload, rows = fit_and_score(path, "known-truth", truth, predict, out, args)
    print("known truth zipf 1.2, temperature 0.9; fitted:",
          {k: (round(r["value"], 3), round(r["ci_low"], 3), round(r["ci_high"], 3)) for k, r in payload["fitted"].items()})
    return rows


def neural(args, out: Path) -> list[dict]:
    """(b) Runs of the neural family (a gradient-trained model) under replace, calibrated with the
    categorical family over the same 6^3 = 216 sequences; asked for accumulate and 10% fresh data."""
    from mixopt import config as config_mod
    from mixopt import montecarlo

    generations, samples, seeds = 6, 200, 200
    measured = {}
    for name, policy in {"replace": {"retention": "replace"}, **{k: POLICIES[k] for k in ("accumulate", "fresh10")}}.items():
        config = config_mod.from_dict({"scenario": {"family": "neural", "generations": generations, "samples": samples},
                                       "policy": policy, "run": {"seeds": seeds, "seed": 3}})
        per_seed = montecarlo.simulate(config).per_seed
        measured[name] = {m: (per_seed[m].mean(0), per_seed[m].std(0, ddof=1) / np.sqrt(seeds))
                          for m in ("entropy_ratio", "kl")}
    gens = range(generations + 1)
    data = {"family": "categorical", "fit": FIT,
            "scenario": {"generations": generations, "samples": samples, "truth": {"vocab": 216}},
            "run": [{"name": "replace", "policy": {"retention": "replace"}, "metric": [
                metric_table("entropy_ratio", gens, *measured["replace"]["entropy_ratio"]),
                metric_table("kl", gens, *measured["replace"]["kl"], link="affine")]}]}
    path = HERE / "neural-replace.toml"
    path.write_text(f"# (b) the neural family (vocab 6, length 3, M = {samples}) under replace, {seeds} seeds "
                    "(experiments/calibration/run.py neural);\n# fitted with the categorical family over its 216 sequences\n"
                    + predict_mod.measurements_text(data))
    truth = {(name, m): (np.arange(generations + 1), measured[name][m][0])
             for name in ("accumulate", "fresh10") for m in ("entropy_ratio", "kl")}
    _, rows = fit_and_score(path, "neural", truth, {k: POLICIES[k] for k in ("accumulate", "fresh10")}, out, args)
    return rows


def _real_sets() -> dict:
    table = pd.read_csv(HERE / "data" / "real-curves.csv")
    table["paper"] = table["source"].str.extract(r"^([^(]+?\d{4})")[0].str.strip()
    table["stderr"] = table["note"].str.extract(r"approx \+-\s*([0-9.eE-]+)")[0].astype(float)
    sets = {}
    for (paper, model), group in table.groupby(["paper", "model"], sort=False):
        curves = group.groupby(["policy_normalised", "generation"]).agg(value=("value", "mean"), stderr=("stderr", "max"))
        sets[(paper, model)] = curves.reset_index()
    return sets


def real(args, out: Path, world: dict = CATEGORICAL, suffix: str = "") -> list[dict]:
    """(c) Published curves: calibrate on each model's replace curve, predict its other policies;
    (d) the same with the learner (``world = LEARNER``). ``--anchor K``: the fit also sees generations
    0..K of the model's accumulate curve (models without one are left out), and accumulate is scored on
    the generations after K. ``--models a,b``: only the models whose label contains one of them."""
    rows = []
    anchor = getattr(args, "anchor", 0)
    suffix += f"-anchor{anchor}" if anchor else ""
    folder = HERE / f"real{suffix}"
    folder.mkdir(exist_ok=True)
    wanted = [m for m in (getattr(args, "models", None) or "").split(",") if m]
    for (paper, model), curves in _real_sets().items():
        label = re.sub(r"[^a-z0-9]+", "-", f"{paper} {model}".lower()).strip("-")
        if wanted and not any(m in label for m in wanted):
            continue
        replace = curves[curves["policy_normalised"] == "replace"]
        others = sorted(set(curves["policy_normalised"]) - {"replace"})
        if anchor and "accumulate" not in others:
            continue
        generations = int(curves["generation"].max())
        stderr = replace["stderr"].fillna(replace["value"].abs().mean() * 0.002).to_numpy()
        short = len(replace) <= 8  # too few points for every shape key and the link's two
        metric = world["metric"]
        data = {"family": world["family"], "fit": world["short" if short else "fit"],
                "scenario": {"generations": generations, "samples": world["samples"],
                             "truth": {**world["truth"], **(world["held"] if short else {})}},
                "run": [{"name": "replace", "policy": {"retention": "replace"}, "metric": [
                    metric_table(metric, replace["generation"], replace["value"], stderr, link="affine")]}]}
        accumulate = curves[curves["policy_normalised"] == "accumulate"]
        seen = accumulate[accumulate["generation"] <= anchor]  # generation 0 too: every run needs its own
        if anchor:
            data["run"].append({"name": "accumulate", "policy": {"retention": "accumulate"}, "metric": [
                metric_table(metric, seen["generation"], seen["value"],
                             seen["stderr"].fillna(seen["value"].abs().mean() * 0.002), link="affine")]})
        path = folder / f"{label}.toml"
        fitted_on = f"the replace curve and accumulate's generations 0-{anchor}" if anchor else "the replace curve"
        path.write_text(f"# {paper}, {model}: {fitted_on} of data/real-curves.csv (test loss, nats or the paper's "
                        f"units), read-off uncertainty as stderr; fitted with the {world['family']} family\n"
                        + predict_mod.measurements_text(data))
        truth = {}
        for policy in others:
            group = curves[curves["policy_normalised"] == policy]
            if policy == "accumulate" and anchor:  # scored where the fit has not seen it
                group = group[group["generation"] > anchor]
            truth[(policy, metric)] = (group["generation"].to_numpy(), group["value"].to_numpy(),
                                       group["stderr"].to_numpy())
        _, scored = fit_and_score(path, label + suffix, truth, {p: POLICIES[p] for p in others}, out, args,
                                  default=world is CATEGORICAL)
        rows += scored
        print(pd.DataFrame(scored).to_string(index=False), flush=True)
    return rows


def real_learner(args, out: Path) -> list[dict]:
    """(d) The published curves fitted with the learner; each row beside the categorical world's forecast
    of the same curve (``results/real.csv``, from case (c))."""
    categorical = pd.read_csv(out / "real.csv").set_index(["case", "policy"])  # case (c) first: fail early
    rows = real(args, out, LEARNER, "-learner")
    for row in rows:
        key = (re.sub(r"-learner(-anchor\d+)?$", "", row["case"]), row["policy"])
        scored_later = "-anchor" in row["case"] and row["policy"] == "accumulate"  # other points: not comparable
        if key in categorical.index and not scored_later:
            row["rmse_categorical"] = float(categorical.loc[key, "rmse_calibrated"])
            row["inside_90pi_categorical"] = float(categorical.loc[key, "inside_90pi"])
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", choices=("known", "neural", "real", "real-learner"))
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--anchor", type=int, default=0,
                        help="real cases: the fit also sees accumulate's generations 0..K")
    parser.add_argument("--models", default="", help="real cases: only models whose label contains one of these")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from mixopt.runtime import enable_compilation_cache

    enable_compilation_cache()
    rows = {"known": known, "neural": neural, "real": real, "real-learner": real_learner}[args.case](args, out)
    table = pd.DataFrame(rows)
    name = args.case + (f"-anchor{args.anchor}" if args.anchor else "") + (f"-{args.models}" if args.models else "")
    table.to_csv(out / f"{re.sub(r'[^a-z0-9-]+', '-', name)}.csv", index=False)
    print(_markdown(table))


def _markdown(table: pd.DataFrame) -> str:
    cells = [[f"{v:.4g}" if isinstance(v, float) else str(v) for v in row] for row in table.itertuples(index=False)]
    return "\n".join(["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
                     + ["| " + " | ".join(row) + " |" for row in cells])


if __name__ == "__main__":
    main()
