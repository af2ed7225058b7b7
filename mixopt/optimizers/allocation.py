"""The budget's free allocation as a space key (``human_allocation``): a generation's share of the
budget is -log u_t of a uniform u_t (Dirichlet shares) and a share of the spendable budget is spent,
water-filled under each generation's cap and moved later where a flow has not yet brought the data
(``policies.schedules.allocation_fractions``). No JAX at import.
"""
import numpy as np

from mixopt.config import Config
from mixopt.policies.schedules import allocation_fractions

EDGE = 1e-3  # start values are clipped into [EDGE, 1 - EDGE] so their logits are finite


def logit(value):
    value = np.clip(np.asarray(value, np.float64), EDGE, 1 - EDGE)
    return np.log(value) - np.log1p(-value)


ALLOCATION_SPEND = "human_spend"  # the share of the spendable budget an allocation spends
SHARE_FLOOR = 1e-6  # the search's uniform u_t in [floor, 1]; a generation's share is -log u_t (Dirichlet)


def allocation_param(t: int, config: Config) -> str:
    return f"human_share_{t:0{max(2, len(str(config.scenario.generations)))}d}"


def _planned_counts(fractions, config) -> np.ndarray:
    """Real fresh human samples a fraction schedule buys in each generation 1..T (the budget capping)."""
    from mixopt.policies import supply

    scenario = config.scenario
    values = np.broadcast_to(np.asarray(fractions, np.float64), (scenario.generations,))
    return np.asarray(supply.per_generation(values, scenario.schedule("contamination"),
                                            human_budget=scenario.human_budget, num_samples=scenario.samples,
                                            pool=False, flow=scenario.human_per_generation), np.float64)


def _allocation_of(fractions, config) -> tuple[np.ndarray, float]:
    """(shares, spend) that ``allocation_fractions`` maps back to the schedule ``fractions``."""
    from mixopt.policies.schedules import allocation_caps

    counts = _planned_counts(fractions, config)
    _, most = allocation_caps(config.scenario)
    total = counts.sum()
    shares = counts / total if total > 0 else np.full(len(counts), 1.0 / len(counts))
    return shares, float(min(total / most, 1.0)) if most > 0 else 0.0


def _allocation_suggest(trial, config, changes):
    num = config.scenario.generations
    weights = np.array([-np.log(trial.suggest_float(allocation_param(t, config), SHARE_FLOOR, 1.0))
                        for t in range(1, num + 1)])
    spend = trial.suggest_float(ALLOCATION_SPEND, 0.0, 1.0)
    shares = weights / weights.sum() if weights.sum() > 0 else np.full(num, 1.0 / num)
    return {"human_fraction": [round(float(v), 6) for v in allocation_fractions(shares, spend, config.scenario)]}


def _allocation_baseline(changes, config):  # u_t = exp(-share_t): -log u_t / sum = share_t
    shares, spend = _allocation_of(changes["human_fraction"], config)
    return {**{allocation_param(t, config): float(np.exp(-v)) for t, v in enumerate(shares, start=1)},
            ALLOCATION_SPEND: spend}


def _allocation_init(config):
    shares, spend = _allocation_of(config.policy.human_fraction, config)
    return {"shares": np.log(np.maximum(shares, 1e-3)), "spend": logit(spend)}


def _allocation_forward(p, config):
    import jax
    import jax.numpy as jnp

    shares = jax.nn.softmax(p["shares"])
    return {"human_fraction": allocation_fractions(shares, jax.nn.sigmoid(p["spend"]), config.scenario, jnp)}
