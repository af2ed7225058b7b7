"""Float64 for tight closed-form comparisons; silent broadcasting raises (STYLE.md, Tests)."""
import os
import sys

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

sys.path.insert(0, os.path.dirname(__file__))  # tests/_utils.py and tests/_reference.py
