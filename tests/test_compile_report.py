"""``benchmarks/compile_report.py``: the cold suite's compilations summed by module, test and program."""
import importlib.util
import json
from pathlib import Path

_SPEC = importlib.util.spec_from_file_location("compile_report",
                                               Path(__file__).parents[1] / "benchmarks" / "compile_report.py")
compile_report = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(compile_report)


def test_compilations_are_summed_by_module_test_and_program(tmp_path):
    lines = {"1.jsonl": [("tests/test_a.py::test_x", "jit(rollout)", 4.0), ("tests/test_a.py::test_x", "jit(add)", 0.5)],
             "2.jsonl": [("tests/test_b.py::test_y", "jit(rollout)", 1.5), ("tests/test_a.py::test_z", "jit(rollout)", 2.0)]}
    for name, rows in lines.items():
        (tmp_path / name).write_text("".join(json.dumps({"test": t, "program": p, "seconds": s}) + "\n"
                                             for t, p, s in rows))
    tables = compile_report.summarise(compile_report.read(tmp_path))
    module = tables["module"].set_index("module")
    assert list(module.index) == ["tests/test_a.py", "tests/test_b.py"]  # costliest first
    assert module.loc["tests/test_a.py"].tolist() == [3, 6.5, 0.0, 0.0]  # files without stages: compilations
    assert tables["program"].set_index("program").loc["jit(rollout)"].tolist() == [3, 7.5, 0.0, 0.0]
    assert tables["test"].test.iloc[0] == "tests/test_a.py::test_x"


def test_distinct_programs_are_counted_from_the_cache_file_names(tmp_path):
    for name in ("jit_rollout-ab12-cache", "jit_rollout-ab12-atime", "jit_rollout-cd34-cache", "jit_train-ef56-cache"):
        (tmp_path / name).write_bytes(b"")
    assert compile_report.distinct_programs(tmp_path).to_dict() == {"jit_rollout": 2, "jit_train": 1}


def test_lowering_and_tracing_are_summed_beside_the_compilations(tmp_path):
    rows = [("tests/test_a.py::test_x", "jit(rollout)", "trace", 0.25),
            ("tests/test_a.py::test_x", "jit(rollout)", "lower", 1.0),
            ("tests/test_a.py::test_x", "jit(rollout)", "compile", 4.0),
            ("tests/test_b.py::test_y", "jit(add)", "lower", 0.5)]
    (tmp_path / "1.jsonl").write_text("".join(json.dumps({"test": t, "program": p, "stage": g, "seconds": s}) + "\n"
                                              for t, p, g, s in rows))
    module = compile_report.summarise(compile_report.read(tmp_path))["module"].set_index("module")
    assert module.loc["tests/test_a.py"].tolist() == [1, 4.0, 1.0, 0.25]  # compilations, seconds, lower, trace
    assert module.loc["tests/test_b.py"].tolist() == [0, 0.0, 0.5, 0.0]  # lowered, never compiled
