"""What the figures say (issue 27): which heatmap cells are marked, labels that do not overlap, star
colours no line uses, a log axis where a linear one squashes the curves, coinciding curves named,
and a calibration figure titled with what it shows. Pure functions: no simulation, no JAX."""
import matplotlib
import numpy as np

from mixopt.calibration.predict import figure_title
from mixopt.serve.figures import budget_binds, coinciding, label_offsets, log_scale, star_colours


def test_a_cell_is_marked_budget_only_where_the_budget_ran_out():
    # M = 50, T = 10, lambda = 0.05: the simulator buys round(2.5) = 2 a generation (half to even), 70 in
    # all; 70 used is every sample asked for, 60 is not
    assert not budget_binds(50, 10, 0.05, 70)
    assert budget_binds(50, 10, 0.05, 60)
    assert not budget_binds(50, 10, 0.0, 50) and budget_binds(50, 10, 0.2, 100)
    # the count the heatmap used before, M (1 + lambda T) = 75, marks the 70-sample cell: the first
    # assert fails on it (checked by hand: restoring it fails this test)


def test_labels_of_nearby_points_are_stacked_not_overprinted():
    x, y = np.array([100.0, 100.0, 100.5, 300.0]), np.array([0.01, 0.01, 0.0101, 0.05])
    offsets = label_offsets(x, y)
    assert len(set(offsets[:3])) == 3  # three labels at one place: three heights
    assert offsets[3] == 3.0  # a point far from the others keeps the plain offset


def test_stars_take_colours_no_line_uses():
    lines = {tuple(matplotlib.colors.to_rgb(c)) for c in matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]}
    stars = {tuple(matplotlib.colors.to_rgb(c)) for c in star_colours(5)}
    assert len(stars) == 5 and not stars & lines


def test_log_axis_where_the_curves_span_a_factor_ten_and_coinciding_curves_are_named():
    assert log_scale([0.002, 0.004, 0.5]) and not log_scale([0.1, 0.3]) and not log_scale([0.0, 1.0])
    assert not log_scale([-1.0, 50.0])  # a metric that can be negative stays linear
    curves = {"front-load-accumulate": [0.1, 0.01], "optimised": [0.1, 0.01], "replace": [0.1, 0.2]}
    assert coinciding(curves) == {"optimised": "front-load-accumulate"}


def test_the_calibration_figure_says_what_it_shows():
    payload = {"fitted": {"zipf": {"value": 1.2, "ci_low": 1.1, "ci_high": 1.3}}, "scenario": {"family": "categorical"},
               "predictions": [{"policy": "accumulate"}], "verdict": "fits (chi2 3.1 on 5 dof, p = 0.68)"}
    title = figure_title(payload)
    assert "calibrated categorical world" in title and "zipf 1.2 [1.1, 1.3]" in title
    assert "predicted policies" in title and "verdict: fits" in title
    assert title != "fits"
    # four fitted keys (the learner's) wrap instead of running off the figure's edge
    many = {**payload, "fitted": {k: {"value": 1.23456, "ci_low": 1.0, "ci_high": 1.5}
                                  for k in ("epochs", "noise", "spectrum", "signal")}}
    lines = figure_title(many).splitlines()
    assert len(lines) > 2 and max(map(len, lines)) <= 110 and "signal 1.235 [1, 1.5]" in " ".join(lines)
    # a failed verdict is shown whole (where the shape is wrong is its point), wrapped, not cut mid-word
    failed = {**payload, "verdict": "cannot fit: chi2 = 101.1 on 48 degrees of freedom (p = 1.3e-05); the worst "
                                    "point is run replace, test_error at generation 30: measured 3.35, fitted 3.28"}
    lines = figure_title(failed).splitlines()
    assert "generation 30: measured 3.35, fitted 3.28" in " ".join(lines)
    assert max(map(len, lines)) <= 110
