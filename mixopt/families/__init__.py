"""Model families and their registry."""
import inspect

from mixopt.errors import ConfigError
from mixopt.families.base import Family
from mixopt.families.categorical import categorical
from mixopt.families.gaussian import gaussian

REGISTRY = {"gaussian": gaussian, "categorical": categorical}


def make_family(name: str, truth: dict) -> Family:
    """Builds family ``name`` with the keyword parameters in ``truth`` (a ``[scenario.truth]`` table)."""
    if name not in REGISTRY:
        raise ConfigError(f"scenario.family must be one of {', '.join(sorted(REGISTRY))}, got {name!r}")
    factory = REGISTRY[name]
    allowed = list(inspect.signature(factory).parameters)
    unknown = sorted(set(truth) - set(allowed))
    if unknown:
        raise ConfigError(f"scenario.truth.{unknown[0]} is not a parameter of family {name!r}; "
                          f"allowed: {', '.join(allowed)}")
    return factory(**truth)


__all__ = ["Family", "REGISTRY", "categorical", "gaussian", "make_family"]
