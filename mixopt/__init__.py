"""mixopt: how much human data to keep, and how to mix in synthetic data, against model collapse.

Public names are loaded lazily, so ``import mixopt`` (and the CLI's start) does not import JAX until a
computation needs it.
"""
import importlib

_EXPORTS = {
    "ConfigError": "mixopt.errors", "MixoptError": "mixopt.errors", "SimulationError": "mixopt.errors",
    "Config": "mixopt.config", "Scenario": "mixopt.config", "Policy": "mixopt.config",
    "RunConfig": "mixopt.config", "from_dict": "mixopt.config", "load": "mixopt.config",
    "simulate": "mixopt.api", "optimize": "mixopt.api", "recommend": "mixopt.api", "benchmark": "mixopt.api",
    "calibrate": "mixopt.api",
    "build": "mixopt.montecarlo", "Result": "mixopt.montecarlo",
    "GenInfo": "mixopt.generation", "GenState": "mixopt.generation", "SimInputs": "mixopt.generation",
    "StepInputs": "mixopt.generation",
    "simulator": "mixopt.generation", "Family": "mixopt.families", "gaussian": "mixopt.families",
    "make_family": "mixopt.families",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'mixopt' has no attribute {name!r}")
