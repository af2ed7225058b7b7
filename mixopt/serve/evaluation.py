"""How far an answer's evaluation on fresh seeds runs: the precision stop shared by ``recommend`` and the
atlas build (an atlas entry is the answer an optimising ``recommend`` gives, evaluated the same way)."""

PRECISION = 0.02  # the evaluation stops once every mean is known to 2% (95% half-width), or at eval_seeds
MIN_EVAL_SEEDS = 100  # even past the deadline (but not past LIMIT_END; compiled programs, no new ones): an answer
# on one chunk of 32 seeds could not tell a policy from one simulated in a world of half the batch size


def precise_enough(report: dict, precision: float = PRECISION) -> bool:
    """Whether every row of the report is known to ``precision`` of its mean (a stop by precision)."""
    rows = [report["objective"], *[r for r in report["baselines"] if "mean" in r]]
    return all(r["ci_high"] - r["mean"] <= precision * abs(r["mean"]) + 1e-12 for r in rows)


def floor(eval_seeds: int, seeds: int) -> int:
    """The fewest fresh seeds an answer stops at (by precision or, in ``recommend``, by the deadline): the
    search's seeds and ``MIN_EVAL_SEEDS``, at most ``eval_seeds``."""
    return min(eval_seeds, max(seeds, MIN_EVAL_SEEDS))


def record(report: dict, eval_seeds: int, precision: float) -> dict:
    """How ``report`` was evaluated, stored beside it (``evaluation``): the fresh seeds asked, the precision
    stop (0: none) and whether every mean met it."""
    return {"eval_seeds": eval_seeds, "precision": precision,
            "precise": bool(precision) and precise_enough(report, precision)}


def reusable(report: dict, eval_seeds: int, precision: float) -> bool:
    """Whether a stored report answers an evaluation asked this way: asked the same, and run to its end
    (every seed, or the precision met) — not one a deadline cut short. A report stored without a record
    (before it existed, or by ``optimize``) ran every seed it has, without a stop."""
    done = report.get("evaluation") or {"eval_seeds": report["objective"]["eval_seeds"], "precision": 0.0,
                                        "precise": False}
    ran_out = done["precise"] or report["objective"]["eval_seeds"] >= done["eval_seeds"]
    return done["eval_seeds"] == eval_seeds and done["precision"] == precision and ran_out
