"""The relaxed (differentiable) simulation equals the exact one at whole counts, path by path.

The gradient path counts lambda_t M human samples instead of round(lambda_t M) (and curates
q (M - n_h) synthetic ones instead of its rounding). Where every such count is a whole number the two
semantics are the same computation on the same keys, so their metrics must agree to float64 rounding
(rtol 1e-9) for every family and every policy piece: replace, accumulate, window, subsample, the
pool source, the budget cap, human weights, the synthesis temperature and curation. Off whole counts
they must differ (the power check: at lambda M = 5.5 the relaxed path is not the exact one).

Where the relaxed path is a different law, it cannot be equal path by path, and is checked elsewhere
in expectation: the count families' exact samplers (multinomial counts vs n Dirichlet(n q),
tests/test_categorical.py and tests/test_conformance.py) and the provenance filter's binomial drops
(replaced by their means; with a perfect detector the drops are deterministic, and that case is
held equal here). Here the count families run with the naive sampler, which is shared.
"""
import jax
import numpy as np
import pytest

from mixopt import config as config_mod
from mixopt import montecarlo

T, M = 4, 20
SMALL_TRUTH = {"gmm": {"em_steps": 5, "bins": 32}, "neural": {"train_steps": 10, "vocab": 4, "length": 2},
               "categorical": {"vocab": 12, "smoothing": 0.1}, "regression": {"dim": 3}, "gaussian": {"dim": 2}}
EXACT_PATHWISE = ("gaussian", "regression")  # relaxed_stats is None: the same statistic sampler
# lambda M whole: 0.25 * 20 = 5, 0.5 * 20 = 10, ...; a budget of M + 12 runs out in generation 3
ACCUMULATE = dict(retention="accumulate", human_fraction=[0.5, 0.25, 0.0, 0.75], human_weight=0.7)
POLICIES = {
    "accumulate-weighted-budget": ACCUMULATE,
    "accumulate-weighted-budget-tempered": dict(ACCUMULATE, temperature=[0.8, 1.2, 0.9, 1.0]),
    "window-pool": dict(retention="window", window=2, human_fraction=0.35, human_source="pool"),
    "subsample": dict(retention="subsample", human_fraction=0.4),
    # 0.8 * 15 = 12 synthetic kept each generation (an unlimited budget keeps n_h = 5 throughout)
    "replace-curated": dict(retention="replace", human_fraction=0.25, curation_fraction=0.8, budget="inf"),
    # a perfect detector (tpr 1, fpr 0) makes the filter's binomial drops deterministic, so the relaxed
    # path's expected counts are the exact ones: 10 slots bought, 5 contaminated, all 5 dropped
    "accumulate-perfect-filter": dict(retention="accumulate", human_fraction=0.5, provenance_filter=True,
                                      scenario=dict(contamination=0.5, detector_tpr=1.0, detector_fpr=0.0)),
}
FAMILY_POLICIES = {"gaussian": ["accumulate-weighted-budget-tempered", "window-pool", "subsample", "replace-curated",
                                "accumulate-perfect-filter"],
                   "regression": ["accumulate-weighted-budget", "replace-curated"],
                   "categorical": ["accumulate-weighted-budget-tempered", "replace-curated"],
                   "gmm": ["accumulate-weighted-budget"], "neural": ["window-pool"]}
CASES = [(f, p, s) for f, ps in FAMILY_POLICIES.items() for p in ps
         for s in (("exact", "naive") if f in EXACT_PATHWISE else ("naive",))
         if not (s == "exact" and (POLICIES[p]["retention"] == "subsample" or "curation_fraction" in POLICIES[p]))
         and not (s == "naive" and p == "window-pool" and f in EXACT_PATHWISE)]  # pool: one sampler is enough


def both(family, policy, sampler):
    policy = dict(policy)
    budget = policy.pop("budget", M + 12)
    config = config_mod.from_dict({
        "scenario": {"family": family, "generations": T, "samples": M, "human_budget": budget,
                     "truth": SMALL_TRUTH[family], **policy.pop("scenario", {})},
        "policy": policy, "run": {"sampler": sampler}})
    keys = montecarlo.seed_keys(1, 3)
    out = []
    for relaxed in (False, True):
        sim, inputs = montecarlo.build(config, relaxed=relaxed)
        out.append(jax.jit(jax.vmap(sim.rollout, in_axes=(0, None)))(keys, inputs).metrics)
    return out


@pytest.mark.parametrize("family,policy,sampler", CASES, ids=[f"{f}-{p}-{s}" for f, p, s in CASES])
def test_relaxed_equals_exact_at_whole_counts(family, policy, sampler):
    exact, relaxed = both(family, POLICIES[policy], sampler)
    for name in exact:
        np.testing.assert_allclose(np.asarray(relaxed[name]), np.asarray(exact[name]), rtol=1e-9, atol=1e-12,
                                   err_msg=name)


@pytest.mark.parametrize("sampler", ["exact", "naive"])
def test_power_off_whole_counts_they_differ(sampler):
    exact, relaxed = both("gaussian", dict(retention="accumulate", human_fraction=0.275), sampler)  # 5.5
    assert not np.allclose(np.asarray(relaxed["kl"][:, 1:]), np.asarray(exact["kl"][:, 1:]), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(relaxed["kl"][:, 0]), np.asarray(exact["kl"][:, 0]), rtol=1e-9)
