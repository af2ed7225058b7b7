"""A time-budgeted evaluation (``optimizers.evaluate.paired_values``): chunks of common seeds, cut at the
deadline but never below ``min_seeds``, and the same numbers as an unbudgeted run on the seeds it used."""
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
