"""The checks a config's values pass at construction: each raises a one-line ConfigError naming the
key and what is allowed (STYLE.md habit 7)."""
import math
from typing import Any

from mixopt.errors import ConfigError


def _int(where: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{where} must be an integer >= {minimum}, got {value!r}")
    return value


def _number(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ConfigError(f"{where} must be a number, got {value!r}")
    return float(value)


def _choice(where: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"{where} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _fractions(where: str, value: Any, num_generations: int) -> float | tuple[float, ...]:
    """A fraction in [0, 1], or a list of one per generation 1..T."""
    if isinstance(value, (list, tuple)):
        if len(value) != num_generations:
            raise ConfigError(f"{where} must have one value per generation 1..{num_generations} "
                              f"({num_generations} values), got {len(value)}")
        return tuple(_fractions(f"{where}[{i}]", v, num_generations) for i, v in enumerate(value))
    number = _number(where, value)
    if not 0.0 <= number <= 1.0:
        raise ConfigError(f"{where} must be in [0, 1], got {value!r}")
    return number


TEMPERED_FAMILIES = ("gaussian", "categorical", "gmm", "neural")  # whose models sample at a temperature


def _temperatures(value: Any, num_generations: int) -> float | tuple[float, ...]:
    """A sampling temperature > 0, or a list of one per generation 1..T."""
    if isinstance(value, (list, tuple)):
        if len(value) != num_generations:
            raise ConfigError(f"policy.temperature must have one value per generation 1..{num_generations} "
                              f"({num_generations} values), got {len(value)}")
        return tuple(_temperatures(v, num_generations) for v in value)
    number = _number("policy.temperature", value)
    if not 0.0 < number < math.inf:
        raise ConfigError(f"policy.temperature must be a number > 0, got {value!r}")
    return number


def _budget(value: Any, num_samples: int) -> float:
    if isinstance(value, str) and value.strip().lower() in ("inf", "infinite", "infinity"):
        return math.inf
    number = _number("scenario.human_budget", value)
    if number < num_samples:
        raise ConfigError(f"scenario.human_budget must be >= scenario.samples ({num_samples}: generation 0 "
                          f"trains on that many human samples) or \"inf\", got {value!r}")
    return number


def _flow(value: Any) -> float:
    """``scenario.human_per_generation``: fresh human samples that appear each generation (inf: a stock)."""
    if isinstance(value, str) and value.strip().lower() in ("inf", "infinite", "infinity"):
        return math.inf
    number = _number("scenario.human_per_generation", value)
    if number < 0:
        raise ConfigError(f"scenario.human_per_generation must be a number >= 0 or \"inf\", got {value!r}")
    return number


def _optional_int(where: str, value: Any, minimum: int) -> int | None:
    return None if value is None else _int(where, value, minimum)
