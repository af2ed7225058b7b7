"""The policy conformance suite: every piece the generation loop composes passes the same checks.

Pieces: every retention rule of the registry (and the soft window), the human supply (fresh, pool,
contaminated), the curation filter and the provenance filter. For each:
- shapes: the output has the structure and shapes its contract says (a retention buffer keeps its
  shape from generation to generation, so ``lax.scan`` compiles once);
- jit and no-jit agree (the same keys, the same numbers);
- relaxed equals exact at whole counts (the relaxed piece is the exact one where the exact one is
  defined);
- where relaxed, jax.grad agrees with a central finite difference (deterministic pieces: float64,
  h = 1e-6, rtol 1e-6), and a gradient 10% off is rejected.
The description's human counts are held to the simulated ``human_used``, generation by generation.
A new piece joins by adding an entry to the tables below.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from _utils import tree_allclose
from mixopt import config as config_mod
from mixopt import montecarlo
from mixopt.families import make_family
from mixopt.generation import StepInputs
from mixopt.names import RETENTIONS
from mixopt.policies import filters, retention, supply
from mixopt.policies.retention import Batch, SampleBatch
from mixopt.describe import effective_human

T, M, V = 4, 6, 5
FAMILY = make_family("categorical", {"vocab": V, "smoothing": 0.1}, num_samples=M)
RULES = {name: dict(name=name, soft=False) for name in RETENTIONS} | {"soft_window": dict(name="window", soft=True)}


def _inputs(window=2.0, age_weight=0.5):
    return StepInputs(*[jnp.asarray(0.0)] * 8, window=jnp.asarray(window), age_weight=jnp.asarray(age_weight),
                      human_flow=jnp.asarray(jnp.inf), generation=jnp.asarray(1.0))


def _batches(rule, key):
    """T + 1 random batches of the rule's kind (stats, or samples for subsample)."""
    keys = jax.random.split(key, T + 1)
    if rule.needs_samples:
        return [SampleBatch(jax.random.randint(k, (M,), 0, V), (jnp.arange(M) < 2).astype(float)) for k in keys]
    return [Batch(jax.random.uniform(k, (V,)), jax.random.uniform(jax.random.fold_in(k, 1), (V,))) for k in keys]


def _run_rule(rule, batches, window=2.0):
    buffer, train = rule.init(batches[0])
    trains = [train]
    for t, batch in enumerate(batches[1:], start=1):
        new_buffer, train = rule.update(jax.random.key(t), buffer, batch, _inputs(window))
        assert jax.tree.structure(new_buffer) == jax.tree.structure(buffer)
        assert all(a.shape == b.shape for a, b in zip(jax.tree.leaves(new_buffer), jax.tree.leaves(buffer)))
        buffer = new_buffer
        trains.append(train)
    return trains


def _make(spec):
    return retention.make(spec["name"], FAMILY, num_generations=T, num_samples=M, window_size=2, soft=spec["soft"])


def test_every_registered_rule_is_covered():
    assert set(RETENTIONS) <= set(RULES)


@pytest.mark.parametrize("name", RULES)
def test_retention_shapes(name):
    rule = _make(RULES[name])
    for train in _run_rule(rule, _batches(rule, jax.random.key(0))):
        assert isinstance(train, Batch) and train.human.shape == (V,) and train.synth.shape == (V,)


@pytest.mark.parametrize("name", RULES)
def test_retention_jit_equals_eager(name):
    rule = _make(RULES[name])
    batches = _batches(rule, jax.random.key(1))
    buffer, _ = rule.init(batches[0])
    args = (jax.random.key(7), buffer, batches[1], _inputs())
    with jax.disable_jit():
        eager = rule.update(*args)
    assert tree_allclose(eager, jax.jit(rule.update)(*args), rtol=1e-12, atol=0)


@pytest.mark.parametrize("window", [1, 2, 3])
def test_soft_window_equals_window_at_whole_lengths(window):
    batches = _batches(_make(RULES["window"]), jax.random.key(2))
    exact = retention.make("window", FAMILY, num_generations=T, num_samples=M, window_size=window)
    soft = _make(RULES["soft_window"])
    assert tree_allclose(_run_rule(exact, batches), _run_rule(soft, batches, float(window)), rtol=1e-12, atol=1e-12)
    # power: the soft window of 2 is not the window of 3
    if window == 3:
        assert not tree_allclose(_run_rule(exact, batches), _run_rule(soft, batches, 2.0), rtol=1e-3, atol=1e-3)


def _fd(f, x, h=1e-6):
    return (f(x + h) - f(x - h)) / (2 * h)


def _assert_gradient(f, x):
    grad, fd = float(jax.grad(f)(x)), float(_fd(f, x))
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-9)
    assert abs(1.1 * fd - fd) > 1e-6 * abs(fd) + 1e-9 and not np.isclose(1.1 * grad, fd, rtol=1e-6, atol=1e-9)


def test_soft_window_gradient_in_the_length():
    rule = _make(RULES["soft_window"])
    batches = _batches(rule, jax.random.key(3))
    _assert_gradient(lambda length: jnp.sum(_run_rule(rule, batches, length)[-1].human ** 2), 2.4)


SUPPLIES = {"fresh": dict(pool=False, contaminated=False), "pool": dict(pool=True, contaminated=False),
            "contaminated": dict(pool=False, contaminated=True)}
M_SUPPLY = 40


@pytest.mark.parametrize("name", SUPPLIES)
def test_supply_shapes_jit_and_relaxed_equals_exact(name):
    exact = supply.supply(M_SUPPLY, **SUPPLIES[name], xp=jnp)
    relaxed = supply.supply(M_SUPPLY, **SUPPLIES[name], relaxed=True, xp=jnp)
    for fraction, c, left in [(0.25, 0.5, 100.0), (0.5, 0.25, 7.0), (1.0, 0.0, -3.0), (0.0, 0.5, 50.0)]:
        args = tuple(jnp.asarray(v) for v in (fraction, c, left))
        got = exact.counts(*args)
        assert all(jnp.shape(v) == () for v in got)
        assert tree_allclose(got, jax.jit(exact.counts)(*args), rtol=0, atol=0)
        assert tree_allclose(got, relaxed.counts(*args), rtol=0, atol=1e-12)  # whole counts at these values
        num_real, num_contam = got
        wanted = round(fraction * M_SUPPLY)
        if name == "pool":
            assert (float(num_real), float(num_contam)) == (wanted, 0.0)
            assert float(exact.consumed(num_real)) == 0.0
        else:
            contam = round(c * wanted) if name == "contaminated" else 0
            assert float(num_contam) == contam and float(num_real) == min(wanted - contam, max(left, 0))
            assert float(exact.consumed(num_real)) == float(num_real)
    # rounding: 0.33 * 40 = 13.2 human slots become 13 (exact) and stay 13.2 (relaxed)
    assert float(exact.counts(jnp.asarray(0.33), jnp.asarray(0.0), jnp.asarray(1e9))[0]) == 13.0


@pytest.mark.parametrize("name", SUPPLIES)
def test_supply_gradient(name):
    relaxed = supply.supply(M_SUPPLY, **SUPPLIES[name], relaxed=True, xp=jnp)
    _assert_gradient(lambda f: jnp.sum(jnp.stack(relaxed.counts(f, jnp.asarray(0.3), jnp.asarray(1e9))) ** 2), 0.37)


def test_supply_is_the_same_rule_in_numpy_and_jax():
    for name, spec in SUPPLIES.items():
        in_np = supply.supply(M_SUPPLY, **spec, xp=np)
        in_jax = supply.supply(M_SUPPLY, **spec, xp=jnp)
        for args in [(0.3, 0.5, 20.0), (0.7, 0.1, 3.0), (0.125, 0.0, np.inf)]:
            assert tree_allclose(in_np.counts(*map(np.float64, args)), in_jax.counts(*map(jnp.asarray, args)),
                                 rtol=0, atol=0), (name, args)


DESCRIBED = {
    "budget-cap": {"scenario": {"human_budget": 38}, "policy": {"human_fraction": [0.5, 0.25, 0.4, 0.1]}},
    "contaminated": {"scenario": {"contamination": [0.0, 0.5, 0.25, 1.0], "human_budget": 80},
                     "policy": {"human_fraction": 0.6, "retention": "accumulate"}},
    "pool": {"scenario": {"human_budget": 20}, "policy": {"human_fraction": 0.35, "human_source": "pool"}},
}


@pytest.mark.parametrize("name", DESCRIBED)
def test_the_description_counts_what_the_loop_spends(name):
    """describe.effective_human (what ``describe`` says in words) against the simulated human_used."""
    case = DESCRIBED[name]
    config = config_mod.from_dict({"scenario": {"generations": T, "samples": 20, **case["scenario"]},
                                   "policy": case["policy"], "run": {"seeds": 2}})
    used = montecarlo.simulate(config).per_seed["human_used"]
    spent = np.diff(used, axis=1)  # fresh human samples each generation 1..T spent, per seed
    counts = effective_human(config)
    if config.policy.human_source == "pool":
        assert np.all(spent == 0) and counts == [round(0.35 * 20)] * T  # re-used: spends nothing
    else:
        assert np.all(spent == np.asarray(counts)[None, :]), (spent, counts)
        assert sum(counts) > 0 and (name != "budget-cap" or (counts == [10, 5, 3, 0] and used[0, -1] == 38))  # the cap binds


CURATION_FRACTIONS = [0.25, 0.5, 1.0]


def _curation_args(fraction, key=0):
    x = jax.random.randint(jax.random.key(key), (M,), 0, V)
    synth_w = (jnp.arange(M) >= 2).astype(float)  # two human slots, four synthetic
    return jax.random.key(key + 1), x, synth_w, jnp.asarray(fraction), jnp.asarray(0.3)


@pytest.mark.parametrize("fraction", CURATION_FRACTIONS)
def test_curation_shapes_jit_and_relaxed_equals_exact(fraction):
    exact, relaxed = filters.curation(FAMILY, M), filters.curation(FAMILY, M, relaxed=True)
    args = _curation_args(fraction)
    got = exact.weights(*args)
    assert got.shape == (M,) and float(jnp.sum(got)) == round(fraction * 4)
    assert float(jnp.sum(got[:2])) == 0.0  # human slots are never "kept synthetic"
    assert tree_allclose(got, jax.jit(exact.weights)(*args), rtol=0, atol=0)
    assert tree_allclose(got, relaxed.weights(*args), rtol=0, atol=1e-12)  # q n whole: 1, 2, 4
    assert tree_allclose(filters.no_curation().weights(*args), args[2], rtol=0, atol=0)


def test_curation_gradient():
    relaxed = filters.curation(FAMILY, M, relaxed=True)
    key, x, synth_w, _, noise = _curation_args(0.6)
    ranks = jnp.arange(M, dtype=float)
    _assert_gradient(lambda q: jnp.sum(relaxed.weights(key, x, synth_w, q, noise) * (1.0 + ranks)), 0.6)


@pytest.mark.parametrize("rate", [0.0, 1.0, 0.3])
def test_provenance_shapes_jit_and_relaxed_equals_exact(rate):
    exact, relaxed = filters.provenance(), filters.provenance(relaxed=True)
    count = jnp.asarray(12.0)
    kept = exact.kept(jax.random.key(0), count, rate)
    assert jnp.shape(kept) == () and 0 <= float(kept) <= 12 and float(kept) == int(kept)
    assert float(jax.jit(exact.kept)(jax.random.key(0), count, rate)) == float(kept)
    pass_real, pass_contam = exact.passes(jax.random.key(1), M, rate, 1.0 - rate, jnp.float64)
    assert pass_real.shape == pass_contam.shape == (M,)
    if rate in (0.0, 1.0):  # a sure drop or a sure pass: exact and relaxed agree
        assert float(kept) == float(relaxed.kept(None, count, rate)) == 12 * (1 - rate)
        np.testing.assert_array_equal(pass_real, 1.0 - rate)
    else:  # the binomial's law: over 4000 keys, the mean within 4 standard errors of 12 (1 - rate)
        keys = jax.random.split(jax.random.key(2), 4000)
        draws = np.asarray(jax.vmap(lambda k: exact.kept(k, count, rate))(keys))
        se = np.sqrt(12 * rate * (1 - rate) / len(draws))
        assert abs(draws.mean() - 12 * (1 - rate)) < 4 * se
        assert abs(draws.mean() - 12 * (1 - 1.1 * rate)) > 4 * se  # power: a 10% wrong rate is rejected
    assert tree_allclose(filters.no_provenance().kept(None, count, rate), count, rtol=0, atol=0)


def test_provenance_gradient():
    relaxed = filters.provenance(relaxed=True)
    _assert_gradient(lambda r: relaxed.kept(None, jnp.asarray(12.0), r) ** 2, 0.3)
