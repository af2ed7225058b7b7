"""What ``mixopt calibrate`` prints: the fitted keys with their intervals, the verdict, the fit per
point, and the predictions (table); the long records (CSV); the DESIGN.md section 4 object (JSON)."""
import json

import pandas as pd


def _interval(row: dict) -> str:
    return f"{row['value']:.4g} [{row['ci_low']:.4g}, {row['ci_high']:.4g}]"


def format_calibration(payload: dict, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(payload, indent=1) + "\n"
    fit = pd.DataFrame(payload["fit"])
    predictions = pd.DataFrame(payload["predictions"], columns=["policy", "metric", "generation", "mean",
                                                                 "pi_low", "pi_high", "structural_sd"])
    if fmt == "csv":
        rows = pd.concat([fit.assign(kind="fit"), predictions.assign(kind="prediction")], ignore_index=True)
        return rows.to_csv(index=False)
    level = int(round(payload["level"] * 100))
    keys = pd.DataFrame([{"key": k, f"value [{level}% interval]": _interval(r), "method": r["method"]}
                         for k, r in payload["fitted"].items()])
    for metric, link in payload["link"].items():
        for part in ("a", "b"):
            if part in link:
                keys.loc[len(keys)] = {"key": f"{metric} link {part}", f"value [{level}% interval]": _interval(link[part]),
                                       "method": "laplace"}
    lines = [f"calibrated {payload['scenario']['family']} world ({payload['seeds']} common seeds, "
             f"chi2 = {payload['chi2']:.2f} on {payload['dof']} degrees of freedom): {payload['verdict']}",
             keys.to_string(index=False), "", "fit per point (residual in standard errors):",
             fit.to_string(index=False, float_format=lambda x: f"{x:.4g}")]
    if len(predictions):
        structural = payload.get("discrepancy", {}).get("note", "")
        lines += ["", f"predictions ({level}% intervals: fitted parameters' uncertainty and Monte-Carlo error; "
                      f"structural error {structural}):",
                  predictions.to_string(index=False, float_format=lambda x: f"{x:.4g}")]
    return "\n".join(lines) + "\n"
