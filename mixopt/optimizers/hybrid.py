"""The hybrid method: each Optuna trial's continuous keys refined by a short gradient descent from the
values the trial suggested (structural keys stay as suggested)."""
from mixopt.optimizers.gradient import optimize_gradient
from mixopt.optimizers.space import KEYS


def refine(trial_config, objective, space, *, steps, learning_rate, seeds, seed):
    """Hybrid: a short gradient refinement of the trial's continuous keys, from its suggested values."""
    continuous = tuple(k for k in space if KEYS[k].differentiable and k not in ("window", "age_weight"))
    for key, rule in (("window", "window"), ("age_weight", "age")):  # a window's length (soft_window) or gamma
        if key in space and trial_config.policy.retention == rule:  # only where the trial's rule has one
            continuous += (key,)
    if not continuous or trial_config.policy.retention == "subsample" or trial_config.scenario.train_size:
        return trial_config  # a sample-level selection (subsample, a train_size) has no gradient
    return optimize_gradient(trial_config, objective, continuous, steps=steps, learning_rate=learning_rate,
                             seeds=min(seeds, 128), seed=seed).config
