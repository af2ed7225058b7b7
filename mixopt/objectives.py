"""From a GenInfo trace to a scalar objective, and its expectation over seeds.

An objective is ``final:METRIC`` (the metric of the last model) or ``mean:METRIC`` (averaged over
generations 1..T; generation 0 does not depend on the policy). Each metric has a known direction.
"""
from typing import NamedTuple

from mixopt.errors import ConfigError

# Metrics where collapse drives the value *down* are maximised; distances are minimised.
MAXIMISE = {"variance_ratio", "log_det_ratio", "support", "tail_mass", "entropy_ratio", "minority_share",
            "mode_coverage"}
MINIMISE = {"kl", "w2", "mean_shift", "tv", "lost_mass", "collision", "test_error", "human_used"}
REDUCTIONS = ("final", "mean")
# Why a family may lack a metric that others have: said in the error, so the fix is in the message.
WHY_MISSING = {"kl": "kl is finite only where the model gives every outcome mass: categorical needs "
                     "smoothing > 0 and no capacity below vocab"}


class Objective(NamedTuple):
    reduction: str  # "final" or "mean"
    metric: str
    direction: str  # "minimize" or "maximize" (Optuna's spelling)

    @property
    def name(self) -> str:
        return f"{self.reduction}:{self.metric}"

    def value(self, metrics: dict):
        """The objective of one seed's (or a batch's) trace: ``metrics[name]`` has generations last."""
        trace = metrics[self.metric]
        return trace[..., -1] if self.reduction == "final" else trace[..., 1:].mean(axis=-1)  # numpy or jax

    def loss(self, metrics: dict):
        """The value signed so that lower is better (what gradient descent minimises)."""
        value = self.value(metrics)
        return value if self.direction == "minimize" else -value


def parse(text: str, metric_names: tuple[str, ...] | None) -> list[Objective]:
    """``"final:kl"`` or ``"final:kl,mean:tail_mass"`` -> Objectives; ConfigError names what is allowed.

    ``metric_names``: what the family produces (None: not checked here, e.g. before JAX is imported)."""
    objectives = []
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        reduction, sep, metric = part.partition(":")
        if not sep or reduction not in REDUCTIONS:
            raise ConfigError(f"objective {part!r} must look like final:METRIC or mean:METRIC")
        if metric not in MAXIMISE | MINIMISE:
            raise ConfigError(f"objective metric {metric!r} is unknown; known: {', '.join(sorted(MAXIMISE | MINIMISE))}")
        if metric_names is not None and metric not in metric_names:
            why = f" ({WHY_MISSING[metric]})" if metric in WHY_MISSING else ""
            raise ConfigError(f"objective metric {metric!r} is not produced by this family{why}; "
                              f"it produces: {', '.join(metric_names)}")
        objectives.append(Objective(reduction, metric, "maximize" if metric in MAXIMISE else "minimize"))
    if not objectives:
        raise ConfigError("objective must name at least one final:METRIC or mean:METRIC")
    return objectives
