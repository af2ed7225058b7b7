"""The benchmark's built-in suites (``mixopt benchmark --suite NAME``): each scenario as (scenario keys,
objective[, the policy keys its pipeline fixes[, options: ``refine_steps``]])."""
import itertools

HEATMAP_FRACTIONS = (0.0, 0.05, 0.1, 0.2, 0.5)

SUITES = {
    "smoke": {  # seconds: what the tests run
        "seeds": 64, "trials": 6, "heatmap": (0.0, 0.2), "budget_points": 3, "scenarios": {
            "gaussian-T4": ({"family": "gaussian", "generations": 4, "samples": 30, "human_budget": 60}, "final:kl"),
        }},
    "default": {  # a few minutes on a 2-core machine
        "seeds": 300, "trials": 24, "heatmap": HEATMAP_FRACTIONS, "scenarios": {
            "gaussian-T10": ({"family": "gaussian", "generations": 10, "samples": 50, "human_budget": 300},
                             "final:kl"),
            "categorical-T10": ({"family": "categorical", "generations": 10, "samples": 500, "human_budget": 1500,
                                 "truth": {"vocab": 100}}, "final:tv"),
            "regression-T10": ({"family": "regression", "generations": 10, "samples": 50, "human_budget": 300,
                                "truth": {"dim": 5}}, "final:test_error"),
        }},
    "full": {
        "seeds": 1000, "trials": 60, "heatmap": HEATMAP_FRACTIONS, "scenarios": {
            "gaussian-T20": ({"family": "gaussian", "generations": 20, "samples": 100, "human_budget": 600},
                             "final:kl"),
            "gaussian-T20-polluted": ({"family": "gaussian", "generations": 20, "samples": 100, "human_budget": 600,
                                       "contamination": 0.3, "truth": {"temperature": 0.9}}, "final:kl"),
            "categorical-T20": ({"family": "categorical", "generations": 20, "samples": 1000, "human_budget": 5000},
                                "final:tv"),
            "categorical-minority": ({"family": "categorical", "generations": 20, "samples": 1000,
                                      "human_budget": 3000, "truth": {"minority": 0.1, "minority_size": 100,
                                                                      "temperature": 0.9}},
                                     "final:minority_share"),
            "regression-T20": ({"family": "regression", "generations": 20, "samples": 50, "human_budget": 500,
                                "truth": {"dim": 10}}, "final:test_error"),
            "gmm-T10": ({"family": "gmm", "generations": 10, "samples": 1000, "human_budget": 3000}, "final:kl"),
            "neural-T8": ({"family": "neural", "generations": 8, "samples": 2000, "human_budget": 6000},
                          "final:kl"),
        }},
}


def _constrained_suite() -> dict:
    """Where optimising pays (issue 28): retention constraint x objective x supply (a stock, or a flow of
    M/10 a generation), Gaussian (kl) and categorical (final:tv). The Gaussian's trials are refined by 60
    gradient steps (bursty plans are found by the gradient); a categorical refinement takes a minute."""
    worlds = {"gaussian": ({"family": "gaussian", "generations": 10, "samples": 50, "human_budget": 200},
                           ("final:kl", "mean:kl")),
              "categorical": ({"family": "categorical", "generations": 10, "samples": 200, "human_budget": 800,
                               "truth": {"vocab": 100}}, ("final:tv",))}
    limits = {"replace": ({}, {"retention": "replace"}), "window3": ({}, {"retention": "window", "window": 3}),
              "train-size": ({"train_size": None}, {}), "accumulate": ({}, {"retention": "accumulate"})}
    scenarios = {}
    for family, (world, objectives) in worlds.items():
        for (limit, (scenario_keys, policy)), objective in itertools.product(limits.items(), objectives):
            for supply, flow in (("stock", {}), ("flow", {"human_per_generation": world["samples"] // 10})):
                scenario = {**world, **flow, **{k: 2 * world["samples"] for k in scenario_keys}}
                name = f"{family}-{limit}-{objective.split(':')[0]}-{supply}"
                scenarios[name] = (scenario, objective, policy, {"refine_steps": 60 if family == "gaussian" else 0})
    return {"seeds": 256, "trials": 16, "heatmap": (), "budget_points": 0, "scenarios": scenarios}


SUITES["constrained"] = _constrained_suite()
