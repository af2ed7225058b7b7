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
