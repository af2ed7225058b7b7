"""Predictions of other policies in the fitted world, with 90% intervals that carry the fitted
parameters' uncertainty (``intervals``), the calibrated config, and the figure."""
import math
import textwrap
from pathlib import Path

import numpy as np

from mixopt.calibration.fit import Z, continuous, jacobian
from mixopt.calibration.intervals import link_params


def forecast(world, links: dict, values: dict, best, cov, profiles: dict, policy: dict):
    """(mean, variance) of ``policy``'s metrics stacked metric by metric over generations 0..T (measured
    units, the link applied): the variance carries the parameters' uncertainty, the integer keys'
    profiles and the Monte-Carlo error."""
    names = list(links)
    num = world.measurements.generations + 1

    def stacked(v):
        curves = world.curves(v, policy)
        return np.concatenate([curves[m].mean for m in names])

    curves = world.curves(values, policy)
    mu = np.concatenate([curves[m].mean for m in names])
    var_mc = np.concatenate([curves[m].var for m in names])
    a = np.repeat([best.links[m][0] for m in names], num)
    b = np.repeat([best.links[m][1] for m in names], num)
    keys = continuous(world.measurements)
    columns = [b[:, None] * jacobian(stacked, keys, values)] if keys else []
    for metric, part in link_params(links):
        rows = np.repeat([m == metric for m in names], num).astype(float)
        columns.append((rows if part == "a" else rows * mu)[:, None])
    var = b ** 2 * var_mc
    if columns:
        grad = np.concatenate(columns, 1)
        finite = np.where(np.isfinite(cov), cov, 0.0)
        var = var + np.einsum("ij,jk,ik->i", grad, finite, grad)
        if not np.isfinite(cov).all():
            var = np.where(np.abs(grad) @ (~np.isfinite(np.diag(cov))).astype(float) > 0, np.inf, var)
    for key, (low, high, _, ridge) in profiles.items():  # an integer key's interval, as +- z sd, along its ridge
        for end, at in ((low, ridge["low"]), (high, ridge["high"])):
            if end != values[key]:
                var = var + (b * (stacked({**values, **at, key: end}) - mu) / Z) ** 2 / 2
    return a + b * mu, var


def predict(world, links: dict, values: dict, best, cov, profiles: dict, name: str, policy: dict,
            structural: dict | None = None) -> list[dict]:
    """Rows ``policy, metric, generation, mean, pi_low, pi_high, structural_sd`` (measured units, the link
    applied); ``structural``: metric -> the discrepancy's s (``discrepancy``: sd s at generations
    t >= 1); a metric without one gets a band without it."""
    names = list(links)
    num = world.measurements.generations + 1
    mean, var = forecast(world, links, values, best, cov, profiles, policy)
    extra = np.repeat([(structural or {}).get(m, 0.0) for m in names], num) * np.tile(np.arange(num) > 0, len(names))
    half = Z * np.sqrt(var + extra ** 2)
    return [{"policy": name, "metric": names[i // num], "generation": i % num, "mean": float(mean[i]),
             "pi_low": float(mean[i] - half[i]), "pi_high": float(mean[i] + half[i]),
             "structural_sd": float(extra[i])} for i in range(len(mean))]


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float):
        return '"inf"' if math.isinf(value) else repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return str(value)


def measurements_text(data: dict) -> str:
    """A measurements table (as ``measurements.parse`` takes it) written as TOML."""
    inline = lambda table: "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in table.items()) + " }"
    lines = [f"family = {_toml_value(data['family'])}", f"fit = {inline(data['fit'])}", ""]
    lines += _table("scenario", data.get("scenario", {}))
    for run in data["run"]:
        lines += ["", "[[run]]", f"name = {_toml_value(run['name'])}", f"policy = {inline(run['policy'])}"]
        for metric in run["metric"]:
            lines += ["[[run.metric]]"] + [f"{k} = {_toml_value(v)}" for k, v in metric.items()]
    return "\n".join(lines) + "\n"


def _table(name: str, table: dict) -> list[str]:
    lines = [f"[{name}]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in table.items() if v is not None and not isinstance(v, dict)]
    for k, v in table.items():
        if isinstance(v, dict):
            lines += [""] + _table(f"{name}.{k}", v)
    return lines


def config_text(payload: dict, source: str) -> str:
    """The calibrated world as a config every command takes; the first observed run's policy written as
    comments (a policy key a config sets is a constraint of the user's pipeline, which a measurement
    is not: uncomment a line to make it one); the ``[calibration]`` table keeps the intervals
    (``recommend --uncertain`` with no range reads them)."""
    uncertain = [f"{'' if key == 'samples' else 'truth.'}{key}={row['ci_low']:.6g}:{row['ci_high']:.6g}"
                 for key, row in payload["fitted"].items() if row["ci_low"] < row["ci_high"]]
    widths = {spec: _relative_width(payload["fitted"][spec.split("=")[0].removeprefix("truth.")]) for spec in uncertain}
    calibration = {"source": source, "verdict": payload["verdict"], "level": payload["level"],
                   "uncertain": sorted(uncertain, key=lambda s: -widths[s])[:2],
                   "fitted": {k: [row["ci_low"], row["value"], row["ci_high"]] for k, row in payload["fitted"].items()}}
    lines = ["# written by mixopt calibrate: the fitted world (value inside its 90% interval)", ""]
    scenario = dict(payload["scenario"])
    unstated = scenario.get("human_budget") in ("inf", math.inf)
    if unstated:  # nothing measured a budget: the user states theirs, the tool does not invent one
        scenario.pop("human_budget")
    table = _table("scenario", scenario)
    if unstated:  # after the [scenario] keys, before its [scenario.truth] table
        end = table.index("") if "" in table else len(table)
        table[end:end] = ["# human_budget = ...  # not measured: state yours (fresh human samples in all, generation",
                          "#                       0's M included); without it, answers assume unlimited human data"]
    lines += table + [""]
    lines += ["# The first observed run's policy. Every policy key a config sets is a constraint that",
              "# optimize and recommend keep (your pipeline's fixed rule): uncomment what you cannot change."]
    lines += ["# " + line for line in _table("policy", payload["policy"])] + [""]
    lines += _table("run", {"seeds": 1000, "seed": payload["seed"]}) + [""]
    lines += _table("calibration", calibration)
    return "\n".join(lines) + "\n"


def _relative_width(row: dict) -> float:
    scale = abs(row["value"]) or 1.0
    return (row["ci_high"] - row["ci_low"]) / scale


def figure_title(payload: dict) -> str:
    """What the figure shows, in words: the measured curves, the fitted world and its verdict."""
    fitted = ", ".join(f"{k} {row['value']:.4g} [{row['ci_low']:.4g}, {row['ci_high']:.4g}]"
                       for k, row in payload["fitted"].items())
    family = payload["scenario"].get("family", "?")
    predicted = " and predicted policies (dashed, 90% bands)" if payload["predictions"] else ""
    lines = [f"measured curves (points) and the calibrated {family} world's fit (lines){predicted}",
             f"fitted {fitted} (90% intervals); verdict: {payload['verdict']}"]  # whole, wrapped: where it fails
    return "\n".join(textwrap.fill(line, 110) for line in lines)


def figure(payload: dict, path: str | Path, held_out: dict | None = None) -> Path:
    """Measured points (with error bars), the fitted curves and the predicted curves with their bands;
    ``held_out`` ({(policy, metric): (generations, values)}): measurements of the predicted policies that
    the fit did not see, drawn as open markers in their prediction's colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    fit = pd.DataFrame(payload["fit"])
    predictions = pd.DataFrame(payload["predictions"])
    metrics = list(dict.fromkeys(fit["metric"]))
    fig, axes = plt.subplots(1, len(metrics), figsize=(8 * len(metrics), 4.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for run, group in fit[fit["metric"] == metric].groupby("run", sort=False):
            bars = None if group["stderr"].isna().any() else group["stderr"]
            points = ax.errorbar(group["generation"], group["measured"], yerr=bars, fmt="o", label=f"{run} (measured)")
            ax.plot(group["generation"], group["predicted"], "-", color=points[0].get_color(), label=f"{run} (fit)")
        if len(predictions):
            for policy, group in predictions[predictions["metric"] == metric].groupby("policy", sort=False):
                line = ax.plot(group["generation"], group["mean"], "--", label=f"{policy} (predicted)")
                ax.fill_between(group["generation"], group["pi_low"], group["pi_high"], alpha=0.2,
                                color=line[0].get_color())
                if (policy, metric) in (held_out or {}):
                    ax.plot(*held_out[(policy, metric)], "o", mfc="none", color=line[0].get_color(),
                            label=f"{policy} (measured, not fitted)")
        ax.set_xlabel("generation")
        ax.set_ylabel(metric + ("" if payload["link"][metric]["link"] == "identity" else " (measured units)"))
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(figure_title(payload), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
