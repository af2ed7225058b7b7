"""Tables and machine-readable output of results (plots arrive with the benchmark issue)."""
import json

import pandas as pd

MAX_TABLE_ROWS = 26


def wide_table(trajectory: pd.DataFrame) -> pd.DataFrame:
    """One row per generation, one ``mean ± std`` column per metric."""
    cells = trajectory.assign(cell=[f"{m:.4g} ± {s:.2g}" for m, s in zip(trajectory["mean"], trajectory["std"])])
    order = list(dict.fromkeys(trajectory["metric"]))
    wide = cells.pivot(index="generation", columns="metric", values="cell")[order]
    wide.columns.name = None
    return wide


def format_result(result, fmt: str) -> str:
    """``table``: a readable per-generation summary; ``csv``/``json``: the records of DESIGN.md section 4."""
    trajectory = result.trajectory
    if fmt == "csv":
        return trajectory.to_csv(index=False)
    if fmt == "json":
        payload = {**result.config.to_dict(), "trajectory": trajectory.to_dict(orient="records")}
        return json.dumps(payload, indent=1) + "\n"
    wide = wide_table(trajectory)
    note = ""
    if len(wide) > MAX_TABLE_ROWS:  # thin evenly, keep the last generation
        step = -(-len(wide) // (MAX_TABLE_ROWS - 1))
        keep = sorted(set(range(0, len(wide), step)) | {len(wide) - 1})
        note = f"(every {step}th of {len(wide)} generations shown; --format csv for all)\n"
        wide = wide.iloc[keep]
    seeds = int(trajectory["seeds"].iloc[0])
    head = _headline(result.config, seeds)
    return f"{head}\n{wide.to_string()}\n{note}"


def _headline(config, seeds: int) -> str:
    s, p = config.scenario, config.policy
    fraction = p.human_fraction if not isinstance(p.human_fraction, tuple) else "schedule"
    truth = "".join(f" {key}={value}" for key, value in s.truth.items())
    if s.contamination:
        truth += (f" contamination={'schedule' if isinstance(s.contamination, tuple) else s.contamination}"
                  f" detector=({s.detector_tpr:g},{s.detector_fpr:g})")
    return (f"{s.family}{truth} T={s.generations} M={s.samples} budget={s.human_budget:g} | "
            f"human_fraction={fraction} source={p.human_source} retention={p.retention}"
            f"{f'(W={p.window})' if p.retention == 'window' else ''}"
            f"{'' if p.human_weight is None else ' human_weight=set'}"
            f"{' provenance_filter' if p.provenance_filter else ''} | "
            f"{seeds} seeds, sampler {config.sampler}; mean ± std across seeds")


def format_optimization(payload: dict, fmt: str) -> str:
    """``json``: the object of DESIGN.md section 4; ``csv``: policy + baselines as rows; ``table``: a summary."""
    if fmt == "json":
        return json.dumps(payload, indent=1) + "\n"
    objective = payload["objective"]
    rows = [{"name": "optimised", "mean": objective["mean"], "ci_low": objective["ci_low"],
             "ci_high": objective["ci_high"], "human_used": payload["human_used"]}] + payload["baselines"]
    table = pd.DataFrame(rows)
    if fmt == "csv":
        return table.to_csv(index=False)
    policy = ", ".join(f"{k}={_short(v)}" for k, v in payload["policy"].items())
    head = (f"best policy ({payload['method']}{', study ' + payload['study'] if payload['study'] else ''}): {policy}\n"
            f"{objective['metric']} ({objective['direction']}) on {objective['eval_seeds']} fresh seeds, 95% CI; "
            f"margin = how much better the optimised policy is (paired CI)\n")
    return head + table.to_string(index=False, float_format=lambda v: f"{v:.4g}") + "\n"


def _short(value):
    if isinstance(value, list):
        return "[" + ", ".join(f"{v:.3g}" for v in value) + "]"
    return f"{value:.4g}" if isinstance(value, float) else value
