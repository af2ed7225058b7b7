"""The policy keys an optimiser may change (``--space``), baselines, and policy <-> config plumbing."""
import dataclasses

from mixopt.config import Config, Policy
from mixopt.errors import ConfigError

from mixopt.policies.schedules import SCHEDULES

FRACTION_KEYS = ("human_fraction", "human_fraction_schedule", *SCHEDULES)  # at most one: they set lambda_t
CONTINUOUS = (*FRACTION_KEYS, "human_weight", "curation_fraction", "temperature")
TEMPERATURE_RANGE = (0.5, 2.0)  # the synthesis temperatures a search considers (log-uniform)
STRUCTURAL = ("retention", "window", "human_source", "provenance_filter")
SPACE_KEYS = CONTINUOUS + STRUCTURAL

# The strategies every optimised policy is compared with (DESIGN.md section 4, issue 4). None of them
# curates or filters (``_PLAIN``): they are what a practitioner does without those tools, and
# subsample retention could not combine with either.
_PLAIN = dict(curation_fraction=1.0, provenance_filter=False)
BASELINES = {
    "replace": dict(retention="replace", human_fraction=0.0, human_source="fresh", human_weight=None, temperature=None),
    "accumulate": dict(retention="accumulate", human_fraction=0.0, human_source="fresh", human_weight=None,
                       temperature=None),
    "accumulate-subsample": dict(retention="subsample", human_fraction=0.0, human_source="fresh", human_weight=None,
                                 temperature=None),
    "keep-10%-human": dict(retention="replace", human_fraction=0.1, human_source="pool", human_weight=None,
                           temperature=None),
    "all-human": dict(retention="replace", human_fraction=1.0, human_source="fresh", human_weight=None,
                      temperature=None),
}


def parse_space(text: str | list) -> tuple[str, ...]:
    keys = [k.strip() for k in (text.split(",") if isinstance(text, str) else text) if k.strip()]
    for key in keys:
        if key not in SPACE_KEYS:
            raise ConfigError(f"--space key {key!r} is unknown; allowed: {', '.join(SPACE_KEYS)}")
    fraction_keys = [k for k in keys if k in FRACTION_KEYS]
    if len(fraction_keys) > 1:
        raise ConfigError(f"--space takes one of {', '.join(FRACTION_KEYS)} (each sets the human fraction), "
                          f"got {', '.join(fraction_keys)}")
    if not keys:
        raise ConfigError("--space must name at least one policy key")
    return tuple(keys)


def with_policy(config: Config, **changes) -> Config:
    """``config`` with policy keys replaced, validated against its scenario."""
    policy = dataclasses.replace(config.policy, **changes).check(config.scenario)
    sampler = config.run.sampler
    if sampler == "exact" and policy.needs_samples:
        sampler = None  # exact does not apply there; let the default choose
    return dataclasses.replace(config, policy=policy, run=dataclasses.replace(config.run, sampler=sampler))


def policy_dict(policy: Policy) -> dict:
    """A ``[policy]`` table (lists for schedules), as ``mixopt simulate --policy`` reads it."""
    out = dataclasses.asdict(policy)
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in out.items() if v is not None}


def baseline_configs(config: Config) -> dict[str, Config]:
    """Each baseline as a full config; ``all-human`` only where the budget allows it."""
    out = {}
    scenario = config.scenario
    for name, changes in BASELINES.items():
        if name == "all-human" and scenario.human_budget < scenario.samples * (scenario.generations + 1):
            continue
        out[name] = with_policy(config, **changes, **_PLAIN)
    return out
