"""A time-budgeted evaluation (``optimizers.evaluate.paired_values``): chunks of common seeds, cut at the
deadline (or before a round predicted to cross it) but never below ``min_seeds`` unless a ``limit`` is
near, and the same numbers as an unbudgeted run on the seeds it used."""
import time

import numpy as np

from mixopt import config as config_mod
from mixopt import objectives
from mixopt.optimizers.evaluate import build_report, paired_values
from mixopt.optimizers.space import with_policy

CONFIG = config_mod.from_dict({"scenario": {"generations": 3, "samples": 20, "human_budget": 50},
                               "policy": {"human_fraction": 0.3, "retention": "accumulate"}, "run": {"seeds": 16}})
KL = objectives.parse("final:kl", None)[0]


def test_a_passed_deadline_stops_at_the_floor_on_the_same_seeds():
    configs = {"policy": CONFIG, "replace": with_policy(CONFIG, retention="replace", human_fraction=0.0)}
    full, used_full = paired_values(configs, KL, seeds=64, seed=2)
    cut, used = paired_values(configs, KL, seeds=64, seed=2, chunk=16, deadline=time.perf_counter() - 1,
                              min_seeds=32)
    assert used_full == 64 and used == 32  # two chunks of 16: the floor, though the deadline had passed
    for name in configs:  # the seeds it used are the first 32 of the full run's: the same numbers
        np.testing.assert_allclose(cut[name]["kl"], full[name]["kl"][:32], rtol=1e-12)
    # power: another seed gives other numbers
    other, _ = paired_values(configs, KL, seeds=32, seed=3)
    assert not np.allclose(other["policy"]["kl"], full["policy"]["kl"][:32])
    # a limit (the end the whole answer keeps) wins over the floor: one round, the first chunk's seeds
    limited, used = paired_values(configs, KL, seeds=64, seed=2, chunk=16, deadline=time.perf_counter() - 1,
                                  min_seeds=32, limit=time.perf_counter() - 1)
    assert used == 16
    np.testing.assert_allclose(limited["policy"]["kl"], full["policy"]["kl"][:16], rtol=1e-12)


def test_no_round_starts_that_the_last_one_says_would_end_past_the_deadline(monkeypatch):
    # a clock that ticks 1 s at each reading: a round starts at t, ends at t + 1, so the next would end at
    # t + 2. With the deadline at 1.5 the second round is not started (16 seeds); a rule that only asks
    # whether the deadline has passed would run it (1 < 1.5) and stop at 32.
    import types

    from mixopt.optimizers import evaluate

    configs = {"policy": CONFIG}

    def run(deadline):
        ticks = iter(range(1000))
        monkeypatch.setattr(evaluate, "time", types.SimpleNamespace(perf_counter=lambda: float(next(ticks))))
        return paired_values(configs, KL, seeds=64, seed=2, chunk=16, deadline=deadline)[1]

    assert run(1.5) == 16
    assert run(2.5) == 32  # the second round ends at 3 and the third would end at 4: past 2.5
    assert run(100.0) == 64  # power: a far deadline lets every round run


def test_the_report_says_how_many_seeds_it_used():
    runners: dict = {}
    report = build_report(CONFIG, KL, eval_seeds=64, seed=0, chunk=16, runners=runners,
                          deadline=time.perf_counter() - 1, min_seeds=16)
    assert report["objective"]["eval_seeds"] == 16
    assert runners  # the compiled programs were kept for reuse, one per structure
    unbudgeted = build_report(CONFIG, KL, eval_seeds=64, seed=0)
    assert unbudgeted["objective"]["eval_seeds"] == 64


def test_a_precision_stops_at_the_first_chunk_that_reaches_it():
    """The stopping rule on the CI width: with precision 0.1 the evaluation ends at the first chunk of
    50 seeds where every config's 95% half-width is at most 10% of its mean, and not before."""
    configs = {"policy": CONFIG, "replace": with_policy(CONFIG, retention="replace", human_fraction=0.0)}
    full, _ = paired_values(configs, KL, seeds=4000, seed=2)

    def reached(n):
        return all(1.96 * full[k]["kl"][:n, -1].std(ddof=1) / np.sqrt(n) <= 0.1 * full[k]["kl"][:n, -1].mean()
                   for k in configs)

    expected = next(n for n in range(100, 4001, 50) if reached(n))
    _, used = paired_values(configs, KL, seeds=4000, seed=2, chunk=50, min_seeds=100, precision=0.1)
    assert 100 < used == expected < 4000 and not reached(expected - 50)


def test_a_slow_compile_raises_the_expectation_for_the_next_ones(monkeypatch):
    # A clock that only moves when a program is built (5 s a build): the first config's build shows that
    # builds take 5 s, so the second (another structure), which would end past the deadline at 6 s, is left
    # out. A rule that kept the 0.1 s it was told (5 + 0.1 < 6) would build it.
    import types

    from mixopt.optimizers import evaluate

    clock = [0.0]
    build = evaluate.montecarlo.runner

    def slow_build(config):
        clock[0] += 5.0
        return build(config)

    monkeypatch.setattr(evaluate, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    monkeypatch.setattr(evaluate.montecarlo, "runner", slow_build)
    configs = {"policy": CONFIG, "replace": with_policy(CONFIG, retention="replace", human_fraction=0.0)}
    out, used = paired_values(configs, KL, seeds=16, seed=2, deadline=6.0, compile_s=0.1)
    assert isinstance(out["replace"], evaluate.NotEvaluated) and used == 16
    clock[0] = 0.0  # power: with a deadline that leaves room for a second 5 s build, both are evaluated
    out, _ = paired_values(configs, KL, seeds=16, seed=2, deadline=10.5, compile_s=0.1)
    assert not isinstance(out["replace"], evaluate.SimulationError)
