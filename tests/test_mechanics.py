"""Mechanics of the loop: scan = Python loop, vmap = stacked single runs, jit = no jit, no recompiles."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from _utils import count_compilations, tree_allclose
from mixopt import config as config_mod
from mixopt import montecarlo

T, M = 6, 12
POLICIES = [
    dict(retention="replace", human_fraction=0.25),
    dict(retention="accumulate", human_fraction=[0.5, 0.25, 0.0, 0.1, 0.9, 0.3], human_weight=0.7),
    dict(retention="window", window=2, human_fraction=0.3, human_source="pool"),
    dict(retention="subsample", human_fraction=0.4),
]


# M = 12, budget 30: 18 fresh samples after generation 0
HUMAN_USED = {
    "replace": [12, 15, 18, 21, 24, 27, 30],  # round(0.25 * 12) = 3 a generation: exactly the budget
    "accumulate": [12, 18, 21, 21, 22, 30, 30],  # 6, 3, 0, round(1.2) = 1, round(10.8) = 11 capped at 8, 0
    "window": [12] * 7,  # the pool reuses generation 0's samples: nothing fresh is bought
    "subsample": [12, 17, 22, 27, 30, 30, 30],  # round(4.8) = 5 a generation, the last 3 capped
}


def build(policy, sampler=None, dim=2, budget=30):
    config = config_mod.from_dict({"scenario": {"generations": T, "samples": M, "human_budget": budget,
                                                "truth": {"dim": dim}},
                                   "policy": policy, "run": {"sampler": sampler}})
    return montecarlo.build(config)


def samplers(policy):
    return ["naive"] if policy["retention"] == "subsample" else ["exact", "naive"]


CASES = [(p, s) for p in POLICIES for s in samplers(p)]
IDS = [f"{p['retention']}-{s}" for p, s in CASES]


@pytest.mark.parametrize("policy,sampler", CASES, ids=IDS)
def test_scan_equals_python_loop(policy, sampler):
    sim, inputs = build(policy, sampler)
    key = jax.random.key(3)
    scanned = sim.rollout(key, inputs)
    keys = jax.random.split(key, T + 1)
    state, info = sim.init(keys[0], inputs)
    infos = [info]
    per_generation = inputs.per_generation(T)
    for t in range(T):
        state, info = sim.step(state, (keys[t + 1], jax.tree.map(lambda x: x[t], per_generation)))
        infos.append(info)
    looped = jax.tree.map(lambda *xs: jnp.stack(xs), *infos)
    assert tree_allclose(scanned, looped, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("policy,sampler", CASES, ids=IDS)
def test_vmap_equals_stacked_single_runs_and_jit_equals_eager(policy, sampler):
    sim, inputs = build(policy, sampler)
    keys = montecarlo.seed_keys(5, 4)
    batched = montecarlo.batched(sim)(keys, inputs)
    single = jax.tree.map(lambda *xs: jnp.stack(xs), *[sim.rollout(k, inputs) for k in keys])
    assert tree_allclose(batched, single, rtol=1e-9, atol=1e-12)
    # the budget (30 = M + 18) runs out mid-run under fresh sources: human_used is deterministic,
    # the same in every seed, and follows round(lambda_t M) capped by what is left (by hand below)
    np.testing.assert_array_equal(np.asarray(batched.metrics["human_used"]),
                                  np.tile(HUMAN_USED[policy["retention"]], (4, 1)))


@pytest.mark.parametrize("chunk", [1, 3])
def test_chunked_seeds_equal_vmapped_seeds(chunk):
    sim, inputs = build(POLICIES[3], "naive")
    keys = montecarlo.seed_keys(2, 7)  # 7 is not a multiple of 3: the remainder chunk too
    assert tree_allclose(montecarlo.batched(sim, seeds_per_chunk=chunk)(keys, inputs),
                         montecarlo.batched(sim)(keys, inputs), rtol=1e-9, atol=1e-12)


def test_no_recompilation_for_new_policy_values():
    sim, inputs = build(POLICIES[1], "exact")
    run = montecarlo.batched(sim)
    keys = montecarlo.seed_keys(0, 8)
    jax.block_until_ready(run(keys, inputs))
    new = inputs._replace(human_fraction=inputs.human_fraction * 0.5 + 0.1,
                          human_weight=inputs.human_weight * 0.0 + 0.2, human_budget=inputs.human_budget * 3)
    with count_compilations() as compiles:
        out = jax.block_until_ready(run(keys, new))
    assert compiles.count == 0
    assert not tree_allclose(out, run(keys, inputs))  # the new values did reach the computation
    with count_compilations() as compiles:  # the counter does see a compilation (a new shape)
        jax.block_until_ready(run(montecarlo.seed_keys(0, 9), new))
    assert compiles.count >= 1


def test_accumulate_compiles_once_for_many_generations():
    config = config_mod.from_dict({"scenario": {"generations": 200, "samples": 50},
                                   "policy": {"retention": "accumulate", "human_fraction": 0.1}})
    sim, inputs = montecarlo.build(config)
    with count_compilations() as compiles:
        jax.block_until_ready(montecarlo.batched(sim)(montecarlo.seed_keys(0, 2), inputs))
    assert 1 <= compiles.count <= 3  # the simulation plus key-splitting helpers, not one per generation


def test_same_seed_same_numbers_other_seed_other_numbers():
    config = config_mod.from_dict({"scenario": {"generations": 5, "samples": 30}, "run": {"seeds": 16, "seed": 7}})
    a, b = montecarlo.simulate(config), montecarlo.simulate(config)
    assert a.trajectory.equals(b.trajectory)
    other = montecarlo.simulate(config_mod.from_dict({"scenario": {"generations": 5, "samples": 30},
                                                      "run": {"seeds": 16, "seed": 8}}))
    assert not np.allclose(a.per_seed["kl"], other.per_seed["kl"])
