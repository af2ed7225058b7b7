"""What the command line prints: tables (pandas), CSV and JSON; ``simulate``'s: ``trajectory_format.py``; the
benchmark's figures: ``serve/report.py``."""
import json

import pandas as pd

from mixopt.optimizers.baselines import budget_matched, zero_budget
from mixopt.serve.report import markdown_table

def format_optimization(payload: dict, fmt: str) -> str:
    """``json``: the object of DESIGN.md section 4; ``csv``: policy + baselines as rows; ``table``: a summary."""
    if fmt == "json":
        return json.dumps(payload, indent=1) + "\n"
    objective = payload["objective"]
    table = _strategy_table(payload, "optimised")
    if fmt == "csv":
        return _with_policies(table, payload).to_csv(index=False)
    policy = ", ".join(f"{k}={_short(v)}" for k, v in applicable(payload["policy"]).items())
    head = (f"best policy ({payload['method']}{', study ' + payload['study'] if payload['study'] else ''}): {policy}\n"
            f"{objective['metric']} ({objective['direction']}) on {objective['eval_seeds']} fresh seeds, 95% CI; "
            f"margin = how much better the answer is than each row (paired CI)\n")
    note = ""
    if payload.get("saturated"):
        note = (f"note: {', '.join(payload['saturated'])} ended within 0.5% of 0 or 1, where the logit's gradient "
                "vanishes: the optimum may be the edge itself (the schedule above is snapped there where no worse)\n")
    return (head + constraint_lines(payload) + verdict(payload) + note
            + table.to_string(index=False, float_format=lambda v: f"{v:.4g}", na_rep="")
            + "\n" + _pareto_lines(payload))


def _pareto_lines(payload: dict) -> str:
    """The re-evaluated Pareto front of a multi-objective search, one point a line."""
    front = payload.get("pareto")
    if not front:
        return ""
    lines = [f"Pareto front ({len(front)} points, re-evaluated on {front[0].get('eval_seeds', '?')} fresh seeds, 95% CI):"]
    for point in front:
        if "error" in point:
            lines.append(f"  degenerate: {point['error']}")
            continue
        scores = "; ".join(f"{name} {v['mean']:.4g} [{v['ci_low']:.4g}, {v['ci_high']:.4g}]"
                           for name, v in point["values"].items())
        lines.append(f"  {scores} -- {point['description']}")
    return "\n".join(lines) + "\n"


def constraint_lines(payload: dict) -> str:
    """What the answer assumed, what the user fixed, and a better heuristic outside that, if any."""
    lines = "".join(f"assumed: {text}\n" for text in payload.get("assumptions", []))
    if payload.get("constraints"):
        lines += ("your constraints (kept by the answer and by every heuristic it is compared with): "
                  + ", ".join(f"{k} = {_short(v)}" for k, v in payload["constraints"].items()) + "\n")
    if payload.get("outside_constraints"):
        lines += f"note: {payload['outside_constraints']['note']}; not the answer, as it breaks your constraints\n"
    return lines


def verdict(payload: dict) -> str:
    """One line: the answer against the best budget-matched heuristic (paired CI), e.g. "12% lower
    final:kl than the best simple heuristic, front-load-accumulate [8%, 16%]"."""
    best, margin = payload.get("best_baseline"), payload.get("margin")
    if best is None or margin is None:
        return ""
    metric = payload["objective"]["metric"]
    if payload.get("answer") == "heuristic":  # a report stored before margins had one meaning: no margin
        if payload.get("margin_vs") != "optimised":
            return f"no policy found beats the best simple heuristic, {best}, beyond its CI: the answer is {best}\n"
        found = ("the search found it itself" if margin["ci_low"] == margin["ci_high"] == 0 else
                 f"{_relative(margin, payload['objective']['direction'], metric)} than the policy found")
        return f"no policy found beats the best simple heuristic, {best}, beyond its CI: the answer is {best} ({found})\n"
    return f"{_relative(margin, payload['objective']['direction'], metric)} than the best simple heuristic, {best}\n"


def _relative(margin: dict, direction: str, metric: str) -> str:
    """A paired margin in words: "12% lower final:kl [8%, 16%]" (relative where the baseline's mean is not 0)."""
    better, worse = ("lower", "higher") if direction == "minimize" else ("higher", "lower")
    rel = margin.get("relative")
    if rel is None:
        word = better if margin["mean"] >= 0 else worse
        return f"{abs(margin['mean']):.3g} {word} {metric} [{margin['ci_low']:.3g}, {margin['ci_high']:.3g}]"
    word = better if rel["mean"] >= 0 else worse
    sign = 1 if rel["mean"] >= 0 else -1
    low, high = sorted((sign * rel["ci_low"], sign * rel["ci_high"]))
    return f"{abs(rel['mean']):.0%} {word} {metric} [{low:.0%}, {high:.0%}]"


def applicable(policy: dict) -> dict:
    """The keys of a policy table that do something: no window length (age weight) outside window (age)
    retention, no curation at 1 (keep all), no provenance filter when off."""
    out = dict(policy)
    for key, rule in (("window", "window"), ("age_weight", "age")):
        out.pop(key, None) if out.get("retention") != rule else None
    out.pop("curation_fraction") if out.get("curation_fraction") == 1.0 else None
    if out.get("provenance_filter") is False:
        out.pop("provenance_filter")
    return out


def _with_policies(table: pd.DataFrame, payload: dict) -> pd.DataFrame:
    """The strategy table with each row's policy (the applicable keys, as JSON): what CSV carries."""
    policies = {row["name"]: row.get("policy") for row in payload.get("baselines", [])}
    if "start" in payload:
        policies["start (where the optimiser began)"] = payload["start"].get("policy")
    if "optimised" in payload:
        policies["optimised (not better)"] = payload["optimised"]["policy"]
    first = table["name"].iloc[0]
    policies[first] = payload["policy"]
    return table.assign(policy=[json.dumps(applicable(policies[n])) if policies.get(n) else "" for n in table["name"]])


def _short(value):
    if isinstance(value, list):
        return "[" + ", ".join(f"{v:.3g}" for v in value) + "]"
    return f"{value:.4g}" if isinstance(value, float) else value


def _strategy_table(payload: dict, name: str) -> pd.DataFrame:
    """The policy and the baselines as rows (their trajectories left out)."""
    objective = payload["objective"]
    if payload.get("answer") == "heuristic":
        name = f"{name} (= {payload['best_baseline']})"
    rows = [{"name": name, "mean": objective["mean"], "ci_low": objective.get("ci_low"),
             "ci_high": objective.get("ci_high"), "human_used": payload["human_used"]}]
    if "optimised" in payload:  # the policy the search found, which did not beat the heuristic
        found = payload["optimised"]
        rows.append({"name": "optimised (not better)", **{k: found["objective"][k] for k in ("mean", "ci_low", "ci_high")},
                     "human_used": found["human_used"]})
    start = [{**payload["start"], "name": "start (where the optimiser began)"}] if "start" in payload else []
    rows += [{k: v for k, v in row.items() if k not in ("trajectory", "variants", "policy")}
             for row in start + payload["baselines"]]
    table = pd.DataFrame(rows)
    table.insert(1, "spends", ["budget" if budget_matched(n) else "none" if zero_budget(n) else ""
                               for n in table["name"]])
    return table


def format_recommendation(payload: dict, fmt: str) -> str:
    """``json``: the report object; ``csv``: policy and baselines as rows; ``table``: in words, then numbers."""
    if fmt == "json":
        return json.dumps(payload, indent=1) + "\n"
    table = _strategy_table(payload, "recommended")
    if fmt == "csv":
        return _with_policies(table, payload).to_csv(index=False)
    objective = payload["objective"]
    source = payload["source"]
    if source == "study":
        origin = f"from stored study {payload['study']} ({payload.get('trials', '?')} trials); nothing recomputed"
    elif source == "atlas":
        atlas = payload["atlas"]
        differs = ", ".join(f"{k} {v['entry']} instead of your {v['yours']}" for k, v in atlas.get("differs", {}).items())
        origin = ("from the policy atlas, exact scenario" if atlas["exact"] else
                  f"from the policy atlas, nearest entry at distance {atlas['distance']:.3g} ({differs or 'T='}"
                  f"{'' if differs else atlas['entry_scenario']['generations']}); its numbers are for that scenario, "
                  "its policy is stretched to your horizon and capped by your budget")
    else:
        budget = payload.get("budget") or {}
        origin = (f"optimised now: {payload.get('trials', '?')} trials in {budget.get('search_seconds', '?')} s, "
                  f"stored as study {payload['study']}")
        if payload.get("why_optimised"):
            origin += f" ({payload['why_optimised']})"
        if budget.get("cut_short"):
            origin += (f"; --time-budget {budget['time_budget']:g} cut the evaluation short: {budget['eval_seeds']} of "
                       f"{budget['eval_seeds_asked']} fresh seeds; ask with a larger --time-budget or run "
                       "`mixopt optimize`")
        if budget.get("not_evaluated"):
            origin += (f"; {len(budget['not_evaluated'])} heuristics not evaluated: the time budget ran out while "
                       "their programs would have compiled")
        if budget.get("seconds", 0) > budget.get("time_budget", float("inf")):
            origin += (f"; took {budget['seconds']:g} s against --time-budget {budget['time_budget']:g}: compiling the "
                       "simulator (a cold compilation cache) overran it; the next run loads the compiled programs")
    lines = [f"recommendation ({origin}):", f"  {payload['description']}",
             *constraint_lines(payload).splitlines(),
             f"{objective['metric']} ({objective['direction']}), 95% CI on {objective.get('eval_seeds', '?')} "
             "fresh seeds; margin = how much better the recommendation is than each row (paired CI)",
             *([verdict(payload).rstrip("\n")] if verdict(payload) else []),
             table.to_string(index=False, float_format=lambda v: f"{v:.4g}", na_rep="")]
    if payload.get("trajectory"):
        lines.append(f"predicted {objective['metric'].split(':')[1]} by generation (mean):")
        lines.append(trajectory_table(payload).to_string(float_format=lambda v: f"{v:.4g}"))
    for row in payload.get("variants", []):
        here = ", ".join(f"{k}={v:g}" for k, v in row["scenario"].items())
        best = row["best_here"]
        line = (f"at {here}: robust policy {row['objective']['mean']:.4g} [{row['objective']['ci_low']:.4g}, "
                f"{row['objective']['ci_high']:.4g}]")
        if "objective" in best:
            cost = best["robust_cost"]
            line += (f"; best for this value alone {best['objective']['mean']:.4g} [{best['objective']['ci_low']:.4g}, "
                     f"{best['objective']['ci_high']:.4g}], so robustness costs {cost['mean']:.3g} "
                     f"[{cost['ci_low']:.3g}, {cost['ci_high']:.3g}] here (paired)")
        lines.append(line + f"; that policy: {best['description']}")
    return "\n".join(lines) + "\n"


def trajectory_table(payload: dict, max_rows: int = 12) -> pd.DataFrame:
    """Generations as rows, the recommendation and each baseline as columns (means)."""
    columns = {"recommended": [p["mean"] for p in payload["trajectory"]]}
    for row in payload["baselines"]:
        if "trajectory" in row:
            columns[row["name"]] = [p["mean"] for p in row["trajectory"]]
    table = pd.DataFrame(columns)
    table.index.name = "generation"
    if len(table) > max_rows:
        step = -(-len(table) // (max_rows - 1))
        table = table.iloc[sorted(set(range(0, len(table), step)) | {len(table) - 1})]
    return table


def format_atlas(atlas: dict, fmt: str) -> str:
    rows = [{"family": e["scenario"]["family"], "generations": e["scenario"]["generations"],
             "human_budget": e["scenario"]["human_budget"], "contamination": e["scenario"].get("contamination", 0),
             "objective": e["objective"], "mean": e["report"]["objective"]["mean"],
             "policy": e["report"]["description"]} for e in atlas["entries"]]
    table = pd.DataFrame(rows)
    if fmt == "json":
        return json.dumps(atlas, indent=1) + "\n"
    if fmt == "csv":
        return table.to_csv(index=False)
    return table.to_string(index=False, float_format=lambda v: f"{v:.4g}", na_rep="") + "\n"


def main_table(summary: pd.DataFrame, fmt: str) -> str:
    if fmt == "json":
        return summary.to_json(orient="records", indent=1) + "\n"
    if fmt == "csv":
        return summary.to_csv(index=False)
    return markdown_table(summary)


def format_target(payload: dict, fmt: str) -> str:
    """``recommend --target``: the least budget and its policy in words, then the budget-quality points."""
    if fmt == "json":
        return json.dumps(payload, indent=1) + "\n"
    curve = pd.DataFrame(payload["curve"])
    if fmt == "csv":
        return curve.to_csv(index=False)
    target = payload["target"]
    goal = f"{target['metric']} {target['op']} {target['value']:g}"
    if not payload["met"]:
        lines = [f"no human budget meets {goal}: {payload['reason']}"]
    else:
        objective = payload["objective"]
        lines = [f"least human budget meeting {goal} (95% CI on {objective['eval_seeds']} fresh seeds): "
                 f"{payload['human_budget']:g} samples in all ({payload['fresh_after_generation_0']:g} fresh after "
                 f"generation 0's {payload['scenario']['samples']})",
                 f"  with {payload['strategy']}: {payload['description']}",
                 f"  {target['metric']} = {objective['mean']:.4g} [{objective['ci_low']:.4g}, {objective['ci_high']:.4g}]"]
        if not payload["monotone"]:
            lines.append("  note: a smaller evaluated budget also met the target (the score is not monotone in the "
                         "budget here); the bisection's answer may not be the least")
    table = curve.pivot(index="human_budget", columns="strategy", values="mean")
    lines += ["budget-quality points evaluated (mean of each budget-matched heuristic):",
              table.to_string(float_format=lambda v: f"{v:.4g}")]
    return "\n".join(lines) + "\n"
