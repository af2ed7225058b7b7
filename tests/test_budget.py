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


def test_a_short_last_chunk_runs_the_chunks_program_on_padded_seeds_with_the_same_numbers(monkeypatch):
    # 40 seeds in chunks of 16: the last 8 are padded to 16 with seeds already run, so one program shape
    # serves every round (a short block would be a program of its own), and the numbers are the unchunked run's
    from mixopt.optimizers import evaluate

    configs = {"policy": CONFIG, "replace": with_policy(CONFIG, retention="replace", human_fraction=0.0)}
    full, _ = paired_values(configs, KL, seeds=40, seed=2)
    sizes, run = [], evaluate.montecarlo.per_seed_metrics
    monkeypatch.setattr(evaluate.montecarlo, "per_seed_metrics",
                        lambda config, keys, *a: sizes.append(len(keys)) or run(config, keys, *a))
    chunked, used = paired_values(configs, KL, seeds=40, seed=2, chunk=16)
    assert used == 40 and sizes == [16] * 6
    for name in configs:
        assert chunked[name]["kl"].shape == (40, 4)
        np.testing.assert_allclose(chunked[name]["kl"], full[name]["kl"], rtol=1e-5)


def _clock(monkeypatch, run_s: float, build_s: float) -> list:
    """A clock that moves only when a chunk runs (``run_s``) or a program is built (``build_s``)."""
    import types

    from mixopt.optimizers import evaluate

    clock, run, build = [0.0], evaluate.montecarlo.per_seed_metrics, evaluate.montecarlo.runner

    def timed_run(*args, **kwargs):
        clock[0] += run_s
        return run(*args, **kwargs)

    def timed_build(config):
        clock[0] += build_s
        return build(config)

    monkeypatch.setattr(evaluate, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    monkeypatch.setattr(evaluate.montecarlo, "per_seed_metrics", timed_run)
    monkeypatch.setattr(evaluate.montecarlo, "runner", timed_build)
    return clock


def test_no_round_starts_that_the_last_one_says_would_end_past_the_deadline(monkeypatch):
    # a chunk's run takes 1 s (the program built before): a round starts at t, ends at t + 1, so the next
    # would end at t + 2. With the deadline at 1.5 the second round is not started (16 seeds); a rule that
    # only asks whether the deadline has passed would run it (1 < 1.5) and stop at 32.
    from mixopt import montecarlo

    runners = {montecarlo.structure(CONFIG): montecarlo.runner(CONFIG)}
    clock = _clock(monkeypatch, run_s=1.0, build_s=0.0)

    def run(deadline):
        clock[0] = 0.0
        return paired_values({"policy": CONFIG}, KL, seeds=64, seed=2, chunk=16, deadline=deadline,
                             runners=dict(runners))[1]

    assert run(1.5) == 16
    assert run(2.5) == 32  # the second round ends at 2 and the third would end at 3: past 2.5
    assert run(100.0) == 64  # power: a far deadline lets every round run
    # a limit (the end the whole answer keeps) wins over the floor while it can still be kept: 16 seeds
    # though 32 are asked for; once passed (a compile overran it), the floor wins
    for limit, seeds_used in ((1.5, 16), (0.5, 32)):
        clock[0] = 0.0
        assert paired_values({"policy": CONFIG}, KL, seeds=64, seed=2, chunk=16, deadline=0.0, min_seeds=32,
                             limit=limit, runners=dict(runners))[1] == seeds_used


def test_a_round_that_compiled_predicts_the_next_without_its_compile(monkeypatch):
    # round 1 runs a built program (1 s) and builds another (5 s) before running it (1 s): it ends at 7.
    # Less the build (and the new program's first run, which cannot be told apart from it) the next round
    # is expected to end at 8 — within a limit of 9.5, so it runs (32 seeds; a third, expected to end at
    # 11, does not); counting the compile it would end at 14 and no second round would start (16 seeds).
    from mixopt import montecarlo

    runners = {montecarlo.structure(CONFIG): montecarlo.runner(CONFIG)}
    clock = _clock(monkeypatch, run_s=1.0, build_s=5.0)
    configs = {"policy": CONFIG, "replace": with_policy(CONFIG, retention="replace", human_fraction=0.0)}
    _, used = paired_values(configs, KL, seeds=64, seed=2, chunk=16, limit=9.5, runners=dict(runners))
    assert used == 32 and clock[0] == 9.0
    clock[0] = 0.0  # power: a limit before the second round's expected end stops after the first
    _, used = paired_values(configs, KL, seeds=64, seed=2, chunk=16, limit=7.5, runners=dict(runners))
    assert used == 16


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
    from mixopt.optimizers import evaluate

    clock = _clock(monkeypatch, run_s=0.0, build_s=5.0)
    configs = {"policy": CONFIG, "replace": with_policy(CONFIG, retention="replace", human_fraction=0.0)}
    out, used = paired_values(configs, KL, seeds=16, seed=2, deadline=6.0, compile_s=0.1)
    assert isinstance(out["replace"], evaluate.NotEvaluated) and used == 16
    clock[0] = 0.0  # power: with a deadline that leaves room for a second 5 s build, both are evaluated
    out, _ = paired_values(configs, KL, seeds=16, seed=2, deadline=10.5, compile_s=0.1)
    assert not isinstance(out["replace"], evaluate.SimulationError)
