"""(f) A structural error transferred across language models: does it make the forecast bands hold?

Case (d) fits the learner to each published language model's replace curve and forecasts the policies
it did not see (accumulate; accumulate-subsample where Kazdan et al. measured it). With one run the
structural error cannot be estimated from the runs (``mixopt/calibration/discrepancy.py``), and the
bands, conditional on the family, miss (Kazdan's Llama-2 12M: 0 of 44 points inside). Here each model's
s is taken from the *other* language models' held-out points (the method of moments of
``discrepancy.moment_scale`` per model, its curves pooled, the models weighted equally: s is a property
of a system, and Kazdan's 40-odd points a model would otherwise outvote four models of 4), and each
model's bands are widened by it as ``calibrate --structural test_error=S`` does: z * sqrt(v + s^2), v
the band's own variance. Two leave-outs (``leave_out``): ``model`` leaves the held-out model and its
twin in the other paper out (other sizes of its family stay in), ``family`` every size of its family
(GPT-2 or Llama-2). All six models measure one metric (TinyStories test cross-entropy, nats); the VAE
and GeoDiff curves (other units) are left out.

    python -m experiments.calibration.run real-learner --models gpt-2,llama-2   # writes *-points.csv
    python -m experiments.calibration.transfer                                    # this table

Writes ``results/transfer.csv``: per leave-out and model its held-out points, the forecast's RMSE, the
s its bands get from the others, the points inside the 90% bands without and with it, and the median
half-width; a row ``all`` per leave-out sums them and gives the s of every model.
"""
import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from mixopt.calibration.discrepancy import moment_scale
from mixopt.calibration.fit import Z

HERE = Path(__file__).parent
MODELS = ("gpt-2", "llama-2")  # the language models of data/real-curves.csv


def load(folder: Path) -> dict[str, pd.DataFrame]:
    """Model label -> its held-out points (``run.held_out_points``), with ``residual``, ``own_var`` (the
    band's variance without any structural term) and ``se`` (the read-off error; where the source gives
    none, 0.2% of the point's value: the fits take 0.2% of the curve's mean)."""
    out = {}
    for path in sorted(folder.glob("*-learner-points.csv")):
        label = path.name.removesuffix("-learner-points.csv")
        if not any(m in label for m in MODELS):
            continue
        points = pd.read_csv(path)
        if points.empty:
            continue
        half = (points.pi_high - points.pi_low) / 2
        out[label] = points.assign(residual=points.measured - points["mean"],
                                   own_var=(half / Z) ** 2 - points.structural_sd ** 2,
                                   se=points.stderr.fillna(0.002 * points.measured.abs()))
    return out


def per_model_scale(points: pd.DataFrame) -> float:
    """The model's own s; points whose band is infinite (the forecast not identified) say nothing about
    the structure and are left out, as ``discrepancy.estimate`` leaves them."""
    finite = points[np.isfinite(points.own_var)]
    return moment_scale(finite.residual, finite.own_var, finite.se)


def architecture(label: str) -> str:
    """The model without its paper: Gerstgrasser et al. and Kazdan et al. (one lab, TinyStories) both
    trained GPT-2 9M and Llama-2 12M, so leaving one of them out leaves its twin out too."""
    return label.split("-2024-", 1)[-1]


def lineage(label: str) -> str:
    """The model family without its size (``gpt-2``, ``llama-2``): the stricter leave-out, every size of
    the held-out model's family left out with it."""
    return next(m for m in MODELS if m in label)


LEAVE_OUT = {"model": architecture, "family": lineage}  # what a held-out model takes out with it


def transferred(models: dict[str, pd.DataFrame], held_out: str | None, group=architecture) -> float:
    """s from the models not in ``held_out``'s ``group`` (``architecture``: the same model in the other
    paper; ``lineage``: every size of its family), each model weighted equally (its curves pooled): sqrt
    of the mean of their s^2 (``None``: every model)."""
    others = [per_model_scale(p) ** 2 for name, p in models.items()
              if held_out is None or group(name) != group(held_out)]
    return float(np.sqrt(np.mean(others))) if others else float("nan")


def table(models: dict[str, pd.DataFrame], leave_out: str = "model") -> pd.DataFrame:
    rows = []
    for name, points in models.items():  # a point with an infinite band (not identified) counts as inside
        s = transferred(models, name, LEAVE_OUT[leave_out])
        half = Z * np.sqrt(points.own_var + s ** 2)
        plain = (points.pi_high - points.pi_low) / 2
        rows.append({"leave_out": leave_out, "model": name, "points": len(points),
                     "rmse": float(np.sqrt(np.mean(points.residual ** 2))),
                     "own_s": per_model_scale(points), "s_from_others": s,
                     "inside_without": int(np.sum(points.residual.abs() <= plain)),
                     "inside_with": int(np.sum(points.residual.abs() <= half)),
                     "median_half_width_with": float(np.median(half))})
    frame = pd.DataFrame(rows)
    total = {"leave_out": leave_out, "model": "all", "points": int(frame.points.sum()), "rmse": float("nan"),
             "own_s": float("nan"), "s_from_others": transferred(models, None),
             "inside_without": int(frame.inside_without.sum()), "inside_with": int(frame.inside_with.sum()),
             "median_half_width_with": float("nan")}
    return pd.concat([frame, pd.DataFrame([total])], ignore_index=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    models = load(args.results)
    if len(models) < 2:
        raise SystemExit("transfer: needs the points of two language models or more: run "
                         "python -m experiments.calibration.run real-learner --models gpt-2,llama-2 first")
    frame = pd.concat([table(models, way) for way in LEAVE_OUT], ignore_index=True)
    frame.to_csv(args.results / "transfer.csv", index=False)
    print(frame.to_string(index=False, float_format=lambda v: f"{v:.3g}"))


if __name__ == "__main__":
    main()
