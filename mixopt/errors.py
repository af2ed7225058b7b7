"""Errors raised by mixopt on purpose; the CLI turns each into one line on stderr."""


class MixoptError(Exception):
    """Base class of every error mixopt raises on purpose."""


class ConfigError(MixoptError, ValueError):
    """A scenario, policy or run setting is invalid; the message names the key and what is allowed."""


class SimulationError(MixoptError, ArithmeticError):
    """A simulation produced a non-finite value; the message names the metric and the generation."""
