"""Model families and their registry."""
import inspect

from mixopt.errors import ConfigError
from mixopt.families.base import Family
from mixopt.families.categorical import categorical
from mixopt.families.gaussian import gaussian
from mixopt.families.gmm import gmm
from mixopt.families.learner import learner
from mixopt.families.neural import neural
from mixopt.families.regression import regression

REGISTRY = {"gaussian": gaussian, "categorical": categorical, "gmm": gmm, "learner": learner, "neural": neural,
            "regression": regression}


def make_family(name: str, truth: dict, *, num_samples: int | None = None) -> Family:
    """Builds family ``name`` with the keyword parameters in ``truth`` (a ``[scenario.truth]`` table).

    A factory that takes ``num_samples`` (regression's fixed design: M rows) gets the scenario's M.
    """
    if name not in REGISTRY:
        raise ConfigError(f"scenario.family must be one of {', '.join(sorted(REGISTRY))}, got {name!r}")
    factory = REGISTRY[name]
    allowed = [p for p in inspect.signature(factory).parameters if p != "num_samples"]
    unknown = sorted(set(truth) - set(allowed))
    if unknown:
        raise ConfigError(f"scenario.truth.{unknown[0]} is not a parameter of family {name!r}; "
                          f"allowed: {', '.join(allowed)}")
    if "num_samples" in inspect.signature(factory).parameters and num_samples is not None:
        return factory(**truth, num_samples=num_samples)
    return factory(**truth)


__all__ = ["Family", "REGISTRY", "categorical", "gaussian", "gmm", "learner", "make_family", "neural", "regression"]
