"""The neural family: its truth, its trainer, and functional approximation error that compounds.

Statistical comparisons are Monte-Carlo means over fixed seeds that must differ by more than 4
standard errors of their difference (two_sample_z), a false-alarm rate below 1e-4 per check.
"""
import itertools
import subprocess
import sys

import jax
import numpy as np
import pytest

from _utils import run, two_sample_z
from mixopt.families.categorical import CategoricalParams
from mixopt.families.neural import markov_zipf_probs, neural

SMALL = {"vocab": 4, "length": 3, "width": 16}


def test_truth_is_the_markov_chain_it_claims():
    # an independent spelling of the chain: p(x) = zipf(x1) * prod zipf rank of (x_{k+1} - x_k - 1) mod V
    vocab, length, a = 4, 3, 1.3
    rank = np.arange(1, vocab + 1) ** -a
    rank /= rank.sum()
    probs = markov_zipf_probs(vocab, length, a)
    for n, seq in enumerate(itertools.product(range(vocab), repeat=length)):  # row-major order
        expected = rank[seq[0]] * np.prod([rank[(seq[k + 1] - seq[k] - 1) % vocab] for k in range(length - 1)])
        assert probs[n] == pytest.approx(expected, rel=1e-12)
    assert probs.sum() == pytest.approx(1.0, abs=1e-12)


def test_training_on_the_truth_recovers_it():
    # no sampling error: fit the exact truth probabilities (as counts); only optimisation error is left
    family = neural(**SMALL, train_steps=600)
    fitted = family.fit(jax.random.key(0), family.truth.probs * 1e6, family.empty_stats(), None)
    assert family.metrics(fitted)["kl"] < 2e-3
    # the same truth trained for 5 steps instead: far from it
    fitted_few = neural(**SMALL, train_steps=5).fit(jax.random.key(0), family.truth.probs * 1e6,
                                                     family.empty_stats(), None)
    assert family.metrics(fitted_few)["kl"] > 10 * family.metrics(fitted)["kl"]


def test_sampler_draws_the_model_joint():
    family = neural(**SMALL)
    counts = family.sample_stats(jax.random.key(1), CategoricalParams(family.truth.probs, 1.0, 1.0), 1e6)
    # multinomial counts: each within 5 binomial standard deviations of n p
    p = np.asarray(family.truth.probs)
    assert np.all(np.abs(np.asarray(counts) - 1e6 * p) < 5 * np.sqrt(1e6 * p * (1 - p)) + 1)


def test_fewer_training_steps_compound_over_generations():
    # M large enough that sampling error is small next to the optimisation error of 15 steps
    few = run(32, family="neural", generations=4, samples=20000, train_steps=15, **SMALL)
    many = run(32, family="neural", generations=4, samples=20000, train_steps=300, **SMALL)
    assert two_sample_z(few["kl"][:, 0], many["kl"][:, 0]) > 4  # worse from the first fit
    assert two_sample_z(few["kl"][:, 4], few["kl"][:, 0]) > 4  # and the error compounds
    gap_first, gap_last = (few["kl"][:, g].mean() - many["kl"][:, g].mean() for g in (0, 4))
    assert gap_last > gap_first  # compounding: the gap to the well-trained model widens


def test_accumulate_holds_the_error_that_replace_compounds():
    replace = run(32, family="neural", generations=4, samples=2000, train_steps=100, **SMALL)
    accumulate = run(32, family="neural", generations=4, samples=2000, train_steps=100, retention="accumulate",
                     **SMALL)
    assert two_sample_z(replace["kl"][:, 4], accumulate["kl"][:, 4]) > 4


@pytest.mark.parametrize("flags,message", [
    (["--width", "0"], "width must be an integer >= 1"),
    (["--train-steps", "0"], "train_steps must be an integer >= 1"),
    (["--train-lr", "0"], "train_lr must be a number > 0"),
    (["--vocab", "20", "--length", "4"], "vocab^length must be <= 4096"),
])
def test_bad_neural_parameters_are_one_line_errors(flags, message):
    proc = subprocess.run([sys.executable, "-m", "mixopt", "simulate", "--family", "neural", "--seeds", "2", *flags],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr
