"""The memo of compiled programs (``runtime.Programs``): bounded, least recently used dropped first,
and ``clear_programs`` gives the memory mappings of released executables back (a process may hold
65530; a test worker that kept every program aborted in LLVM)."""
import sys

import jax
import jax.numpy as jnp
import pytest

from mixopt import runtime


def test_the_memo_keeps_the_most_recently_used():
    memo = runtime.Programs(size=2)
    made = []

    def make(name):
        return lambda: made.append(name) or name

    assert memo.get("a", make("a")) == "a" and memo.get("b", make("b")) == "b"
    assert memo.get("a", make("a again")) == "a"  # a hit: not made again, and now the most recent
    memo.get("c", make("c"))  # evicts b, the least recently used
    assert len(memo) == 2 and memo.get("a", make("a again")) == "a"
    assert memo.get("b", make("b again")) == "b again"
    assert made == ["a", "b", "c", "b again"]
    runtime.clear_programs()
    assert len(memo) == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts /proc/self/maps")
def test_clearing_gives_the_mappings_of_compiled_programs_back():
    def mappings():
        with open("/proc/self/maps") as f:
            return sum(1 for _ in f)

    runtime.clear_programs()
    before = mappings()
    memo = runtime.Programs(size=100)
    for i in range(40):  # 40 distinct programs, kept by the memo
        f = memo.get(i, lambda i=i: jax.jit(lambda x: jnp.cumsum(jnp.sin(x) * i) ** (i % 3 + 1)))
        f(jnp.ones(64 + i)).block_until_ready()
    held = mappings()
    runtime.clear_programs()
    released = mappings()
    assert held - before >= 40, (before, held)  # each executable holds at least one mapping
    assert held - released >= 0.75 * (held - before), (before, held, released)


@pytest.mark.parametrize("seed,stream", [(0, 0), (7, 1), (2**31 - 1, 3), (2**31 + 5, 0), (2**40 + 3, 2)])
def test_seed_keys_in_one_program_are_the_eager_keys(seed, stream):
    """Start-up: ``seed_keys`` runs as one program instead of three eager ones, with the same keys (every
    recorded output depends on them), on both sides of the 2^31 seeds a jitted argument can hold."""
    import numpy as np

    from mixopt import montecarlo

    key = jax.random.key(seed)
    key = jax.random.fold_in(key, stream) if stream else key
    np.testing.assert_array_equal(jax.random.key_data(montecarlo.seed_keys(seed, 5, stream=stream)),
                                  jax.random.key_data(jax.random.split(key, 5)))
