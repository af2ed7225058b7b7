"""The README's Python API example runs as written, and its answers are the CLI's."""
import re
import types
from pathlib import Path

import numpy as np

import mixopt

README = Path(__file__).resolve().parents[1] / "README.md"


def _example() -> str:
    text = README.read_text()
    block = text.split("<!-- api example")[1]
    return re.search(r"```python\n(.*?)```", block, re.S).group(1)


def test_the_readme_api_example_runs(capsys):
    scope: dict = {}
    exec(compile(_example(), "README.md", "exec"), scope)
    result, best = scope["result"], scope["best"]
    assert set(result.trajectory.columns) == {"generation", "metric", "mean", "std", "seeds"}
    assert result.per_seed["kl"].shape == (64, 6) and np.isfinite(scope["final_kl"])
    assert best["source"] in ("optimised", "heuristic") and best["method"] == "gradient"
    # margin: the answer against margin_vs (the best heuristic, or, where a heuristic is the answer, the
    # policy the optimiser found); positive = the answer is better
    assert best["best_baseline"] and best["margin_vs"] == ("optimised" if best["source"] == "heuristic"
                                                            else best["best_baseline"])
    assert best["margin"]["ci_low"] > 0 or best["source"] == "heuristic"
    assert np.all((0.0 <= np.asarray(best["policy"]["human_fraction"])) & (np.asarray(best["policy"]["human_fraction"]) <= 1.0))
    assert {b["name"] for b in best["baselines"]} >= {"replace", "accumulate"}
    assert best["description"] in capsys.readouterr().out


def test_api_names_are_exported_and_lazy():
    import mixopt.optimizers.search  # noqa: F401 (a subpackage named like an API function would shadow it)

    assert callable(mixopt.optimize) and not isinstance(mixopt.optimize, types.ModuleType)
    for name in ("simulate", "optimize", "recommend", "benchmark", "SimInputs", "StepInputs", "ConfigError"):
        assert name in mixopt.__all__ and getattr(mixopt, name) is not None


def test_api_simulate_is_the_config_simulation():
    """The same config as a dict, a Config and through montecarlo gives the same numbers."""
    data = {"scenario": {"generations": 3, "samples": 20}, "policy": {"human_fraction": 0.25}, "run": {"seeds": 8}}
    from mixopt import montecarlo

    by_dict = mixopt.simulate(data).per_seed["kl"]
    by_config = montecarlo.simulate(mixopt.from_dict(data)).per_seed["kl"]
    np.testing.assert_array_equal(by_dict, by_config)
    try:
        mixopt.simulate({"scenario": {"samples": -1}})
    except mixopt.ConfigError as err:
        assert "scenario.samples" in str(err)
    else:
        raise AssertionError("a negative size must be a ConfigError")
