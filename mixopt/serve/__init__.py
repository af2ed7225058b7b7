"""What users ask for, on top of the library: ``optimize`` (a method, then the result against the
baselines), ``recommend`` (study, atlas or a bounded search), ``uncertain`` (robust to a range of a
scenario key), ``atlas`` (recommendations precomputed over a grid), ``benchmark`` (suites of scenarios
x strategies) and ``report`` (the benchmark's figures and report.md). Keyword arguments in, plain
objects out; no argparse here (that is ``mixopt.cli``).
"""
