"""The names a config may use, in a module free of JAX, so that reading and validating a config (and
answering ``mixopt recommend`` from storage) starts in a fraction of a second.

``tests/test_names.py`` checks these against the registries they mirror.
"""
FAMILIES = ("categorical", "gaussian", "gmm", "learner", "neural", "regression")  # mixopt.families.REGISTRY
SAMPLERS = ("exact", "naive")  # mixopt.generation
HUMAN_SOURCES = ("fresh", "pool")
RETENTIONS = ("replace", "accumulate", "window", "subsample", "age")  # mixopt.policies.retention

# The truth parameters each family's factory takes by default (mixopt.families.REGISTRY signatures):
# two scenarios that differ only in spelling a default out are the same world (the atlas compares so).
TRUTH_DEFAULTS = {
    "categorical": {"vocab": 1000, "zipf": 1.1, "source": "zipf", "capacity": None, "smoothing": 0.0,
                    "temperature": 1.0, "top_p": 1.0, "minority": 0.0, "minority_size": None},
    "gaussian": {"dim": 1, "estimator": "mle", "fit": "full", "temperature": 1.0},
    "gmm": {"components": 3, "em_steps": 50, "dim": 1, "weights": None, "means": None, "sds": None, "bins": None,
            "limit": None, "temperature": 1.0},
    "learner": {"dim": 20, "spectrum": 1.0, "signal": 1.0, "noise": 0.5, "lr": 0.5, "compute": "epochs", "epochs": 1.0,
                "batch": 10.0, "steps": 100.0, "design": "fresh", "design_seed": 0},
    "neural": {"vocab": 6, "length": 3, "zipf": 1.2, "width": 16, "train_steps": 100, "train_lr": 0.05,
               "train_optimizer": "adam", "temperature": 1.0, "top_p": 1.0},
    "regression": {"dim": 10, "noise": 1.0, "design": "fresh", "ridge": 0.0, "design_seed": 0},
}
