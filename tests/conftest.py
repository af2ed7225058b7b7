"""Float64 for tight closed-form comparisons; silent broadcasting raises (STYLE.md, Tests); XLA compiles at
optimisation level 1.

Compiled programs go to a persistent cache shared by the test processes (the xdist workers and
the CLI subprocesses, as the CLI does for users): many tests compile the same simulation, and
compiling, not running, is most of the suite's time on a 2-core machine.
"""
import os
import sys
import tempfile

# XLA's CPU backend at LLVM optimisation level 1, not its default: the suite's programs compile about a
# third faster and run as fast (benchmarks/README.md, the cold suite); set before JAX starts its backend, and
# inherited by the CLI subprocesses the tests start. A level given in XLA_FLAGS is kept.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=1").strip()

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")
_CACHE = os.environ.setdefault("MIXOPT_CACHE_DIR", os.path.join(tempfile.gettempdir(), "mixopt-tests-jax-cache"))
jax.config.update("jax_compilation_cache_dir", _CACHE)
jax.config.update("jax_compilation_cache_max_size", 4 << 30)  # JAX's eviction locks reads and writes (runtime.py)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)

sys.path.insert(0, os.path.dirname(__file__))  # tests/_utils.py and tests/_reference.py

import pytest  # noqa: E402

from mixopt import runtime  # noqa: E402

_REPORT = os.environ.get("MIXOPT_COMPILE_REPORT")  # a folder: each process's compilations, by test (benchmarks/compile_report.py)
if _REPORT:
    import json

    os.makedirs(_REPORT, exist_ok=True)
    _REPORT_FILE = os.path.join(_REPORT, f"{os.getpid()}.jsonl")

    _STAGES = {"/jax/core/compile/jaxpr_trace_duration": "trace",  # Python tracing to a jaxpr
               "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower",  # the jaxpr to StableHLO
               "/jax/core/compile/backend_compile_duration": "compile"}  # XLA, or a load from the cache

    def _record_compilation(event, seconds, **kwargs):
        if event in _STAGES:
            with open(_REPORT_FILE, "a") as out:
                out.write(json.dumps({"test": os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0],
                                      "program": str(kwargs.get("fun_name", "")), "stage": _STAGES[event],
                                      "seconds": seconds}) + "\n")

    jax.monitoring.register_event_duration_secs_listener(_record_compilation)


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Each test module's compiled programs are released when it ends: a worker that kept all of
    them ran out of memory mappings (``runtime.Programs``); later modules load from the cache."""
    yield
    runtime.clear_programs()
