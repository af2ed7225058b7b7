"""The JAX-free name lists (mixopt/names.py) mirror the registries, and reading a config imports no JAX."""
import subprocess
import sys

from mixopt import names
from mixopt.families import REGISTRY


def test_names_mirror_the_registries():
    assert names.FAMILIES == tuple(sorted(REGISTRY))


def test_reading_a_config_does_not_import_jax():
    code = ("import sys; from mixopt import config; config.from_dict({'scenario': {'generations': 3}}); "
            "print('jax' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr
