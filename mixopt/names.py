"""The names a config may use, in a module free of JAX, so that reading and validating a config (and
answering ``mixopt recommend`` from storage) starts in a fraction of a second.

``tests/test_names.py`` checks these against the registries they mirror.
"""
FAMILIES = ("categorical", "gaussian", "gmm", "neural", "regression")  # mixopt.families.REGISTRY
SAMPLERS = ("exact", "naive")  # mixopt.generation
HUMAN_SOURCES = ("fresh", "pool")
RETENTIONS = ("replace", "accumulate", "window", "subsample")  # mixopt.policies.retention
