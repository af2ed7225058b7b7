"""The JAX-free name lists (mixopt/names.py) mirror the registries, and reading a config imports no JAX."""
import subprocess
import sys

from mixopt import names
from mixopt.families import REGISTRY


def test_names_mirror_the_registries():
    assert names.FAMILIES == tuple(sorted(REGISTRY))


def test_truth_defaults_mirror_the_family_factories():
    import inspect

    for name, factory in REGISTRY.items():
        defaults = {k: p.default for k, p in inspect.signature(factory).parameters.items() if k != "num_samples"}
        assert names.TRUTH_DEFAULTS[name] == defaults, name


def test_reading_a_config_does_not_import_jax():
    code = ("import sys; from mixopt import config; config.from_dict({'scenario': {'generations': 3}}); "
            "print('jax' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr
