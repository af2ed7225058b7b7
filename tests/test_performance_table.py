"""``benchmarks/performance.py``: the README's performance table follows the benchmarks' CSVs."""
import importlib.util
from pathlib import Path

import pandas as pd

_SPEC = importlib.util.spec_from_file_location("performance", Path(__file__).parents[1] / "benchmarks" / "performance.py")
performance = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(performance)


def test_ratios_and_status_come_from_the_csvs(tmp_path):
    pd.DataFrame({"M": [1000, 1000, 100_000, 100_000], "wall_s": [0.2, 0.5, 10.0, 3.0],
                  "method": ["engine inverse_cdf", "numpy multinomial", "engine poisson", "numpy multinomial"]}
                 ).to_csv(tmp_path / "simulate_counts.csv", index=False)
    pd.DataFrame({"scenario": ["g"], "cache": ["cold"], "time_budget": [20.0], "whole_process_s": [26.0]}
                 ).to_csv(tmp_path / "optimize_recommend.csv", index=False)
    frame = performance.table(tmp_path)
    counts = frame[frame.what.str.startswith("categorical")]
    assert list(counts.ratio.round(3)) == [2.5, 0.3] and list(counts.status) == ["met", "NOT met"]
    assert frame[frame.what.str.startswith("optimising")].status.item() == "NOT met"  # 6 s over the budget
    missing = frame[frame.what.str.startswith("naive")]  # no simulate.csv: the row names the command
    assert missing.ratio.isna().all() and "simulate.py --part gaussian" in missing.status.item()
