"""The categorical family against its closed forms, and its knobs (temperature, top-p, capacity, smoothing).

Tolerances as in test_closed_forms: a Monte-Carlo mean over S fixed seeds against its closed form in
units of its standard error (sample std / sqrt(S)), |z| < 4; each closed-form test also shows that a
deliberately wrong formula is rejected (|z| > 4) on the same draws.

Derivations (truth p over V categories, lambda = 0, ``replace``, plain MLE p_hat = counts / M):
  generation 0 is the fit on M truth samples, counts ~ Multinomial(M, p):
    E[support_0] = (1/V) sum_i (1 - (1 - p_i)^M)     (category i is seen at least once)
    E[lost_mass_0] = sum_i p_i (1 - p_i)^M          (the missing mass)
  collision: E[sum_i c_i^2] = M sum p_i (1 - p_i) + M^2 sum p_i^2, so given p_hat_{t-1},
    E[C_t] = C_{t-1} + (1 - C_{t-1}) / M, i.e. 1 - E[C_t] = (1 - 1/M)^(t+1) (1 - sum_i p_i^2): the
    chain collapses to a point mass at rate 1 - 1/M per generation (Seddik et al. 2024, arXiv 2404.05090).
  martingale: E[p_hat_t | p_hat_{t-1}] = p_hat_{t-1}, so E[tail_mass_t] = E[minority_share_t] = 1 for
    every t at temperature 1: the tails vanish in distribution (support, lost mass), not in the mean.
  accumulate: the training counts only grow and synthetic samples only hit categories the model
    has, so with lambda = 0 the support never changes: no category seen in generation 0 is lost.
"""
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from _utils import assert_paired_agreement, run, two_sample_z, z_score
from mixopt.families.categorical import CategoricalParams, categorical, sampling_probs, tail_set, zipf_probs

SEEDS, V, A, M, T = 20000, 20, 1.0, 30, 6
GENS = np.arange(T + 1)
P = zipf_probs(V, A)


def assert_matches(samples, predicted, wrong=None):
    z = z_score(samples, predicted)
    assert np.all(np.abs(z) < 4), f"z = {np.round(z, 2)}"
    if wrong is not None:
        assert np.max(np.abs(z_score(samples, wrong))) > 4


@pytest.fixture(scope="module")
def replace_run():
    return run(SEEDS, family="categorical", vocab=V, zipf=A, generations=T, samples=M)


def test_one_generation_support_and_missing_mass(replace_run):
    out = replace_run
    assert_matches(out["support"][:, 0], np.mean(1 - (1 - P) ** M), wrong=np.mean(1 - (1 - P) ** (M - 3)))
    assert_matches(out["lost_mass"][:, 0], np.sum(P * (1 - P) ** M), wrong=np.sum(P * np.exp(-(M - 3) * P)))


def test_collision_probability_over_generations(replace_run):
    c0 = np.sum(P**2)
    predicted = 1 - (1 - 1 / M) ** (GENS + 1) * (1 - c0)
    assert_matches(replace_run["collision"], predicted, wrong=1 - (1 - 1 / M) ** GENS * (1 - c0))


def test_tail_and_minority_means_are_martingales():
    out = run(SEEDS, family="categorical", vocab=V, zipf=A, generations=T, samples=M, minority=0.2, minority_size=5)
    assert_matches(out["tail_mass"], np.ones(T + 1))
    assert_matches(out["minority_share"], np.ones(T + 1))
    cold = run(SEEDS, family="categorical", vocab=V, zipf=A, generations=T, samples=M, minority=0.2,
               minority_size=5, temperature=0.7)
    assert np.max(np.abs(z_score(cold["minority_share"], np.ones(T + 1)))) > 4  # power: T < 1 breaks it


def test_derivations_by_plain_monte_carlo():
    """The collision and support formulas against a numpy multinomial loop sharing no mixopt code."""
    rng = np.random.default_rng(7)
    probs = np.tile(P, (SEEDS, 1))
    collision, support0 = [], None
    for t in range(T + 1):
        counts = np.stack([rng.multinomial(M, row) for row in probs])
        probs = counts / M
        collision.append((probs**2).sum(1))
        if t == 0:
            support0 = (counts > 0).mean(1)
    c0 = np.sum(P**2)
    assert_matches(np.stack(collision, 1), 1 - (1 - 1 / M) ** (GENS + 1) * (1 - c0))
    assert_matches(support0, np.mean(1 - (1 - P) ** M))


def test_accumulate_never_loses_a_category_seen_in_generation_0(replace_run):
    out = run(4000, family="categorical", vocab=V, zipf=A, generations=T, samples=M, retention="accumulate")
    np.testing.assert_array_equal(out["support"], np.repeat(out["support"][:, :1], T + 1, axis=1))
    assert np.all(out["lost_mass"] <= out["lost_mass"][:, :1] + 1e-6)
    # while replace does lose categories: the mean support falls by far more than its standard error
    assert two_sample_z(replace_run["support"][:, T], replace_run["support"][:, 0]) < -10


def test_lower_temperature_loses_the_tail_faster(replace_run):
    cold = run(SEEDS, family="categorical", vocab=V, zipf=A, generations=T, samples=M, temperature=0.7)
    assert two_sample_z(cold["tail_mass"][:, T], replace_run["tail_mass"][:, T]) < -4
    assert two_sample_z(cold["support"][:, T], replace_run["support"][:, T]) < -4


def test_sampling_probs_temperature_and_top_p():
    p = jnp.array([0.5, 0.3, 0.2, 0.0])
    one = jnp.ones(())
    np.testing.assert_allclose(sampling_probs(CategoricalParams(p, one, one)), p, atol=1e-12)
    q = np.array([0.5, 0.3, 0.2]) ** 2
    np.testing.assert_allclose(sampling_probs(CategoricalParams(p, 0.5 * one, one))[:3], q / q.sum(), rtol=1e-12)
    np.testing.assert_allclose(sampling_probs(CategoricalParams(p, one, 0.6 * one)), [0.625, 0.375, 0, 0], atol=1e-12)
    np.testing.assert_allclose(sampling_probs(CategoricalParams(p, one, 0.5 * one)), [1, 0, 0, 0], atol=1e-12)


def test_capacity_and_smoothing():
    capped = run(2000, family="categorical", vocab=V, zipf=A, generations=3, samples=M, capacity=5)
    assert np.all(capped["support"] <= 5 / V + 1e-9)
    assert np.all(capped["support"][:, 0] == 5 / V)  # M = 30 samples of a Zipf(1) over 20 always show 5 categories
    smooth = run(2000, family="categorical", vocab=V, zipf=A, generations=3, samples=M, smoothing=0.5)
    assert np.all(smooth["support"] == 1.0)
    assert np.all(np.isfinite(smooth["kl"])) and np.all(smooth["kl"] > 0)


def test_smoothing_matches_its_closed_form_at_generation_0():
    """Add-alpha over V categories: p_hat_i = (c_i + alpha) / (M + V alpha) with c ~ Multinomial(M, p), so
    E[collision_0] = sum_i (M p_i (1 - p_i) + (M p_i + alpha)^2) / (M + V alpha)^2 and
    E[tail_mass_0] = sum_tail (M p_i + alpha) / (M + V alpha) / sum_tail p_i. |z| < 4 over 20000 seeds;
    the same formulas at 2 alpha (the audit's mutation) are rejected on the same draws."""
    alpha = 0.5
    out = run(SEEDS, family="categorical", vocab=V, zipf=A, generations=1, samples=M, smoothing=alpha)
    tail = tail_set(P)

    def collision(a):
        return np.sum(M * P * (1 - P) + (M * P + a) ** 2) / (M + V * a) ** 2

    def tail_mass(a):
        return np.sum((M * P[tail] + a) / (M + V * a)) / P[tail].sum()

    assert_matches(out["collision"][:, 0], collision(alpha), wrong=collision(2 * alpha))
    assert_matches(out["tail_mass"][:, 0], tail_mass(alpha), wrong=tail_mass(2 * alpha))
    assert np.all(out["kl"] > 0)


def test_capacity_with_smoothing_has_no_kl_and_refuses_it_as_objective():
    """A capacity-limited model gives the categories outside its K probability 0: KL(truth || model)
    is infinite, so kl is not reported (it once came out as -1.52, log 0 read as 0) and an objective
    on it is a one-line error; the other metrics stay."""
    out = run(200, family="categorical", vocab=V, generations=2, samples=M, capacity=5, smoothing=0.5)
    assert "kl" not in out
    assert np.all(out["support"] <= 5 / V + 1e-9) and np.all(out["tv"] > 0)
    proc = subprocess.run([sys.executable, "-m", "mixopt", "optimize", "--family", "categorical", "--vocab", "20",
                           "--capacity", "5", "--smoothing", "0.5", "--objective", "final:kl", "--space",
                           "human_fraction"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "smoothing > 0 and no capacity below vocab" in proc.stderr, proc.stderr


def test_exact_and_naive_samplers_agree_in_distribution():
    from scipy.stats import ks_2samp

    for case in (dict(), dict(retention="accumulate", human_fraction=0.3),
                 dict(retention="window", window=2, human_fraction=0.2, human_weight=0.6, temperature=0.8)):
        a = run(4000, seed=1, sampler="exact", family="categorical", vocab=V, zipf=A, generations=4, samples=M, **case)
        b = run(4000, seed=2, sampler="naive", family="categorical", vocab=V, zipf=A, generations=4, samples=M, **case)
        pvalues = [ks_2samp(a[m][:, t], b[m][:, t]).pvalue for m in ("tv", "collision", "entropy_ratio")
                   for t in (1, 4)]
        assert min(pvalues) > 1e-4, (case, pvalues)


def test_tail_set_holds_the_rarest_tenth_of_the_mass():
    mask = tail_set(P)
    assert P[mask].sum() <= 0.1 + 1e-12 and P[mask].sum() > 0.1 - P[mask].max() - 1e-12
    assert P[mask].max() <= P[~mask].min()


def test_english_word_frequencies():
    pytest.importorskip("wordfreq", reason="the words extra: pip install 'mixopt[words]'")
    from mixopt.families.categorical import english_words

    words, probs = english_words(200)
    assert words[0] == "the" and len(set(words)) == 200
    assert np.all(np.diff(probs) <= 1e-15) and abs(probs.sum() - 1) < 1e-12
    family = categorical(vocab=200, source="english")
    np.testing.assert_allclose(family.truth.probs, probs, rtol=1e-6)
    out = run(200, family="categorical", vocab=200, source="english", generations=3, samples=500)
    assert out["support"][:, 3].mean() < out["support"][:, 0].mean()


def test_relaxed_gradient_matches_finite_difference_in_expectation():
    """The relaxed exact sampler (n Dirichlet(n q) by loggamma) is reparameterised implicitly, so a
    same-key finite difference matches it in expectation, not path by path: the mean gradient over
    4000 seeds against a central difference of the mean (h = 0.02, common random numbers), within 4
    standard errors of their paired difference; a gradient 20% off is rejected."""
    from mixopt import config as config_mod
    from mixopt import montecarlo
    from mixopt.generation import SimInputs

    config = config_mod.from_dict({"scenario": {"family": "categorical", "generations": 3, "samples": 50,
                                                "truth": {"vocab": V, "smoothing": 0.1}},
                                   "policy": {"human_fraction": 0.3}})
    sim, inputs = montecarlo.build(config, relaxed=True)
    keys = montecarlo.seed_keys(0, 4000)

    def objective(level, key):
        fraction = jnp.full(3, level)
        return sim.rollout(key, SimInputs(fraction, inputs.human_weight, inputs.human_budget)).metrics["kl"][-1]

    grads = np.asarray(jax.jit(jax.vmap(jax.grad(objective), in_axes=(None, 0)))(0.3, keys))
    value = jax.jit(jax.vmap(objective, in_axes=(None, 0)))
    diffs = (np.asarray(value(0.32, keys)) - np.asarray(value(0.28, keys))) / 0.04
    assert np.all(np.isfinite(grads)) and grads.mean() < 0  # more human data, smaller KL
    assert_paired_agreement(grads, diffs)


@pytest.mark.parametrize("flags,message", [
    (["--vocab", "1"], "vocab must be an integer >= 2"),
    (["--zipf", "0"], "zipf must be a number > 0"),
    (["--capacity", "0"], "capacity must be an integer in [1, vocab"),
    (["--temperature", "0"], "temperature must be a number > 0"),
    (["--top-p", "1.5"], "top_p must be in (0, 1]"),
    (["--minority", "1"], "minority must be in [0, 1)"),
])
def test_bad_family_parameters_are_one_line_errors(flags, message):
    proc = subprocess.run([sys.executable, "-m", "mixopt", "simulate", "--family", "categorical", "--seeds", "2",
                           *flags], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr


# Survivors of the mutation run (tests/mutation/README.md), kept as tests.

def test_weighted_counts_give_the_human_side_its_share():
    """Human counts (2, 0) and synthetic (0, 6) with human weight 0.75: the total 8 is split 6 : 2
    (by hand); an empty side gives its share to the other; no weight is plain pooling."""
    from mixopt.families.categorical import weighted_counts

    human, synth = jnp.array([2.0, 0.0]), jnp.array([0.0, 6.0])
    np.testing.assert_allclose(weighted_counts(human, synth, 0.75), [6.0, 2.0], rtol=1e-12)
    np.testing.assert_allclose(weighted_counts(human, synth, None), [2.0, 6.0], rtol=1e-12)
    np.testing.assert_allclose(weighted_counts(human, 0 * synth, 0.75), [2.0, 0.0], rtol=1e-12)
    np.testing.assert_allclose(weighted_counts(0 * human, synth, 0.75), [0.0, 6.0], rtol=1e-12)


def test_relaxed_counts_moments_and_an_empty_draw():
    """n Dirichlet(n q): mean n q and variance n q (1 - q) n / (n + 1), |z| < 4 over 20000 keys
    (the multinomial's variance n q (1 - q) is rejected for the rarest category at n = 3); a count of
    0 gives zeros, not NaN (the 1e-12 floor on the Gamma shapes)."""
    from mixopt.families.counts import relaxed_counts

    q = jnp.array([0.6, 0.3, 0.1, 0.0])
    n = 3.0
    keys = jax.random.split(jax.random.key(5), 20000)
    draws = np.asarray(jax.vmap(lambda k: relaxed_counts(k, n, q))(keys))
    assert_matches(draws[:, :3], n * np.asarray(q[:3]))
    assert np.all(draws[:, 3] == 0)
    centred = (draws[:, :3] - n * np.asarray(q[:3])) ** 2
    variance = n * np.asarray(q[:3]) * (1 - np.asarray(q[:3]))
    assert_matches(centred, variance * n / (n + 1), wrong=variance)
    empty = np.asarray(relaxed_counts(keys[0], 0.0, q))
    assert np.all(np.isfinite(empty)) and np.all(empty == 0)


def test_default_minority_group_is_a_tenth_of_the_vocabulary():
    family = categorical(vocab=50, minority=0.2)
    probs = np.asarray(family.truth.probs)
    assert abs(probs[-5:].sum() - 0.2) < 1e-9 and abs(probs[:-5].sum() - 0.8) < 1e-9
    assert np.all(np.diff(probs[-5:]) < 0)  # Zipf within the group, with the family's exponent


def test_top_p_of_one_keeps_a_category_after_the_rounded_full_mass():
    """top_p >= 1 keeps everything, even a category whose preceding mass rounds to 1 (a mutant that
    dropped it survived the earlier tests)."""
    p = jnp.array([0.5, 0.5, 1e-18])
    one = jnp.ones(())
    assert float(sampling_probs(CategoricalParams(p, one, one))[2]) > 0
    assert float(sampling_probs(CategoricalParams(p, one, 0.999 * one))[2]) == 0  # below 1 it is cut
