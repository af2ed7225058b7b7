"""The hybrid method: each Optuna trial's continuous keys refined by a short gradient descent from the
values the trial suggested (structural keys stay as suggested)."""
from mixopt.optimizers.gradient import optimize_gradient
from mixopt.optimizers.space import KEYS


def refine(trial_config, objective, space, *, steps, learning_rate, seeds, seed):
    """Hybrid: a short gradient refinement of the trial's continuous keys, from its suggested values."""
    continuous = tuple(k for k in space if KEYS[k].differentiable and k != "window")
    if "window" in space and trial_config.policy.retention == "window":  # its length relaxes (soft_window)
        continuous += ("window",)
    if not continuous or trial_config.policy.retention == "subsample":  # subsample's selection has no gradient
        return trial_config
    return optimize_gradient(trial_config, objective, continuous, steps=steps, learning_rate=learning_rate,
                             seeds=min(seeds, 128), seed=seed).config
