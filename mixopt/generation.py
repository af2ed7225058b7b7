"""The multi-generation training loop (DESIGN.md section 2), for one seed.

Generation 0 fits theta_0 on M fresh human samples. For t = 1..T, batch t holds the human samples
the supply gives (``policies.supply``: fresh draws capped by the budget, or re-draws from generation
0's pool) and M - n_h synthetic samples from theta_{t-1}; the filters (``policies.filters``:
curation, provenance) weigh them, the retention rule (``policies.retention``) forms the training
set and theta_t is fitted on it. Metrics of every theta_t, t = 0..T, are recorded.

Write for one seed, batch with ``jax.vmap``; nothing here jits itself (STYLE.md habits 4-5) or is family-specific.
"""
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from mixopt.errors import ConfigError
from mixopt.families.base import Family
from mixopt.names import HUMAN_SOURCES, SAMPLERS
from mixopt.policies import filters
from mixopt.policies.retention import Batch, Retention, SampleBatch
from mixopt.policies.supply import supply


class StepInputs(NamedTuple):
    """The dynamic inputs of one generation t (the scan's slice of ``SimInputs``); see there."""

    human_fraction: jax.Array
    human_weight: jax.Array
    contamination: jax.Array
    detector_tpr: jax.Array
    detector_fpr: jax.Array
    curation_fraction: jax.Array
    verifier_noise: jax.Array
    temperature: jax.Array
    window: jax.Array
    age_weight: jax.Array
    human_flow: jax.Array
    generation: jax.Array  # t, 1..T


class SimInputs(NamedTuple):
    """The dynamic inputs of a simulation, policy and scenario values: arrays, so new values never
    recompile. Per-generation fields take (T,) or () (broadcast).

    Attributes:
      human_fraction: (T,) lambda_t for generations 1..T, in [0, 1].
      human_weight: (T,) share of the loss weight on human samples (ignored unless the simulator
        was built with ``weighted=True``).
      human_budget: () fresh human samples that exist in total (``inf`` allowed).
      contamination: c_t, the share of each fresh "human" batch that is in fact unlabelled
        synthetic data from the current model (the polluted web).
      detector_tpr: probability that the provenance detector flags a synthetic sample.
      detector_fpr: probability that it flags a real human sample.
      curation_fraction: the share of each batch's synthetic samples that the verifier keeps
        (1: no curation; used only by a simulator built with ``curated=True``).
      verifier_noise: standard deviation of the noise on the verifier's score.
      temperature: tau_t, the temperature at which the model of generation t - 1 synthesises
        batch t (used only by a simulator built with ``tempered=True``).
      window: L_t, the continuous window length of generation t (used only by the soft window).
      age_weight: gamma_t of the age rule: a batch of age a weighs gamma^a (retention ``age``).
      human_flow: F, fresh human samples that appear each generation: by generation t at most F t
        beyond generation 0's can have been bought (``inf``: the budget is a stock).
    """

    human_fraction: jax.Array
    human_weight: jax.Array
    human_budget: jax.Array
    contamination: jax.Array | float = 0.0
    detector_tpr: jax.Array | float = 1.0
    detector_fpr: jax.Array | float = 0.0
    curation_fraction: jax.Array | float = 1.0
    verifier_noise: jax.Array | float = 0.0
    temperature: jax.Array | float = 1.0
    window: jax.Array | float = 1.0
    age_weight: jax.Array | float = 0.5
    human_flow: jax.Array | float = float("inf")

    def per_generation(self, num_generations: int) -> StepInputs:
        """Every per-generation input as a (T,) array in the policy's precision (the scan's xs)."""
        dtype = jnp.result_type(self.human_fraction)
        values = {name: getattr(self, name) for name in StepInputs._fields if name != "generation"}
        values["generation"] = jnp.arange(1, num_generations + 1)
        return StepInputs(**{name: jnp.broadcast_to(jnp.asarray(value, dtype), (num_generations,))
                             for name, value in values.items()})


class GenState(NamedTuple):
    """What goes round the loop."""

    params: Any  # model of the previous generation
    buffer: Any  # retention rule's buffer
    human_left: jax.Array  # () fresh human samples not yet used
    human_used: jax.Array  # () fresh human samples used so far
    pool: Any  # (M, ...) generation 0's human samples when human_source == "pool", else None


class GenInfo(NamedTuple):
    """What comes out of each generation (stacked over generations by ``lax.scan``)."""

    metrics: dict  # metric name -> () value, including "human_used"
    num_human: jax.Array  # () real human samples in this generation's batch


class Simulator(NamedTuple):
    """``init(key, inputs: SimInputs) -> (state, info)`` runs generation 0; ``step(state, (key,
    inputs_t: StepInputs)) -> (state, info)`` runs one later generation; ``rollout(key, inputs) ->
    GenInfo`` runs all T + 1, each leaf with a leading axis of length T + 1."""

    init: Callable
    step: Callable
    rollout: Callable


def check_structure(family: Family, retention: Retention, *, num_generations: int, num_samples: int,
                    sampler: str, human_source: str, provenance_filter: bool, curated: bool, tempered: bool) -> None:
    """Raises ConfigError, naming the config key, for a structure the loop cannot run."""
    if sampler not in SAMPLERS:
        raise ConfigError(f"run.sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    if human_source not in HUMAN_SOURCES:
        raise ConfigError(f"policy.human_source must be one of {', '.join(HUMAN_SOURCES)}, got {human_source!r}")
    if provenance_filter and retention.needs_samples:
        raise ConfigError("policy.provenance_filter does not combine with retention subsample yet")
    if curated and (retention.needs_samples or family.log_prob is None):
        raise ConfigError("policy.curation_fraction < 1 does not combine with retention subsample yet, "
                          f"nor with family {family.name!r} without a log density")
    if curated and sampler == "exact":
        raise ConfigError("policy.curation_fraction < 1 scores every synthetic sample: use run.sampler = naive")
    if sampler == "exact" and (retention.needs_samples or family.sample_stats is None):
        raise ConfigError("run.sampler = exact does not apply to retention subsample or a scenario.train_size (they "
                          f"need the samples themselves) or to family {family.name!r} without a statistic sampler; "
                          "use naive")
    for name, value, minimum in (("generations", num_generations, 1), ("samples", num_samples, 2)):
        if not isinstance(value, int) or value < minimum:
            raise ConfigError(f"scenario.{name} must be an integer >= {minimum}, got {value!r}")
    if tempered and not hasattr(family.truth, "temperature"):
        raise ConfigError(f"policy.temperature does not apply to family {family.name!r}: its model has no "
                          "sampling temperature")


def simulator(family: Family, retention: Retention, *, num_generations: int, num_samples: int,
              sampler: str = "exact", human_source: str = "fresh", weighted: bool = False,
              relaxed: bool = False, contaminated: bool = False, provenance_filter: bool = False,
              curated: bool = False, tempered: bool = False, shelf_life: int | None = None, samples=None) -> Simulator:
    """Builds the generation loop for one seed.

    Args:
      family: the model family (truth, sampler, fit, metrics).
      retention: the retention rule.
      num_generations: static T >= 1; generations 0..T are simulated.
      num_samples: static M >= 2, samples per batch.
      sampler: ``"exact"`` draws each batch's sufficient statistics from their sampling distribution
        (cost independent of M); ``"naive"`` draws every sample.
      human_source: ``"fresh"`` or ``"pool"`` (``policies.supply``).
      weighted: use ``human_weight`` as the human share of the loss weight; otherwise every sample
        weighs the same.
      relaxed: continuous counts n_h = lambda_t M instead of round(lambda_t M), so that the
        simulation is differentiable in lambda (the gradient path). At integer counts both agree;
        the naive sampler gives a fractional last sample a fractional weight; the filters' random
        drops become their expectations.
      contaminated: static switch for ``contamination`` (False: treated as 0, no draw spent on it).
      provenance_filter: drop the "human" samples the detector flags (``policies.filters``).
      curated: a verifier keeps the top ``curation_fraction`` of each batch's synthetic samples
        (``policies.filters.curation``; sample level: needs the naive sampler).
      tempered: the model of generation t - 1 samples batch t at ``temperature[t - 1]`` instead of
        the family's own (the model's params must have a ``temperature`` field).
      shelf_life: L, generations a human sample may be kept (None: for ever). The retention rule
        drops older human samples from the training set; here the ``pool`` (generation 0's samples)
        gives nothing from generation L on.
      samples: M as a (traced) value where ``num_samples`` only sizes the arithmetic (the exact statistic
        sampler, fresh human data, no curation: ``montecarlo.samples_as_value``): one program for every M.

    Raises:
      ConfigError: an unknown sampler or source, a size out of range, or the exact sampler asked
        for where it does not apply.
    """
    check_structure(family, retention, num_generations=num_generations, num_samples=num_samples, sampler=sampler,
                    human_source=human_source, provenance_filter=provenance_filter, curated=curated,
                    tempered=tempered)
    pool_source = human_source == "pool"
    size = num_samples if samples is None else samples  # M in the arithmetic; num_samples sizes the arrays
    human_supply = supply(size, pool=pool_source, contaminated=contaminated, relaxed=relaxed, xp=jnp,
                          shelf_life=shelf_life)
    curation = filters.curation(family, num_samples, relaxed=relaxed) if curated else filters.no_curation()
    detector = filters.provenance(relaxed=relaxed) if provenance_filter else filters.no_provenance()
    draw_stats = family.relaxed_stats if relaxed and family.relaxed_stats is not None else family.sample_stats
    draw = (_sample_draw if sampler == "naive" or retention.needs_samples else _stats_draw)(
        family, retention, size, draw_stats, curation, detector, pool_source, contaminated)

    def init(key, inputs):
        key_human, key_fit = jax.random.split(key)
        dtype = jnp.result_type(inputs.human_fraction)  # carried counts follow the policy's precision
        count = jnp.asarray(size, dtype)
        if sampler == "naive" or retention.needs_samples or pool_source:
            x0 = family.sample(key_human, family.truth, num_samples)
            pool = x0 if pool_source else None
            batch0 = _make_batch(family, retention, x0, _count_mask(count, num_samples), x0)
        else:
            pool = None
            batch0 = Batch(draw_stats(key_human, family.truth, count), family.empty_stats())
        buffer, train = retention.init(batch0)
        params = family.fit(key_fit, train.human, train.synth, None)
        state = GenState(params, buffer, (inputs.human_budget - count).astype(dtype), count, pool)
        return state, _info(params, count, count)

    def step(state, xs):
        key, inputs_t = xs
        keys = jax.random.split(key, 6)  # human, synth, contam, detect, keep, fit
        flow_left = inputs_t.human_flow * inputs_t.generation - (state.human_used - size)  # inf * t = inf
        num_real, num_contam = human_supply.counts(inputs_t.human_fraction, inputs_t.contamination, state.human_left,
                                                   flow_left, inputs_t.generation)
        params = state.params
        if tempered:
            params = params._replace(temperature=jnp.asarray(inputs_t.temperature, jnp.result_type(params.temperature)))
        batch = draw(keys[:4], params, state.pool, num_real, num_contam, inputs_t)
        buffer, train = retention.update(keys[4], state.buffer, batch, inputs_t)
        params = family.fit(keys[5], train.human, train.synth, inputs_t.human_weight if weighted else None)
        fresh = human_supply.consumed(num_real)
        state = GenState(params, buffer, state.human_left - fresh, state.human_used + fresh, state.pool)
        return state, _info(params, num_real, state.human_used)

    def _info(params, num_human, human_used):
        return GenInfo({**family.metrics(params), "human_used": human_used}, num_human)

    def rollout(key, inputs):
        keys = jax.random.split(key, num_generations + 1)
        state, info0 = init(keys[0], inputs)
        _, infos = jax.lax.scan(step, state, (keys[1:], inputs.per_generation(num_generations)))
        return jax.tree.map(lambda first, rest: jnp.concatenate([first[None], rest]), info0, infos)

    return Simulator(init, step, rollout)


def _count_mask(count, num_samples):
    """The first ``count`` slots weigh 1; a fractional count (relaxed) gives the next slot a fraction."""
    return jnp.clip(count - jnp.arange(num_samples), 0.0, 1.0)


def _make_batch(family, retention, human_x, human_w, synth_x, synth_w=None):
    """Slots with ``human_w`` > 0 are human, the rest synthetic (a fractional boundary slot, on the
    relaxed path, is shared between both by weight); ``synth_w``: curated synthetic weights."""
    if retention.needs_samples:
        x = jnp.where((human_w > 0).reshape((-1,) + (1,) * (human_x.ndim - 1)), human_x, synth_x)
        return SampleBatch(x, human_w)
    synth_w = 1.0 - human_w if synth_w is None else synth_w
    return Batch(family.data_stats(human_x, human_w), family.data_stats(synth_x, synth_w))


def _stats_draw(family, retention, num_samples, draw_stats, curation, detector, pool_source, contaminated):
    """A generation's batch drawn as sufficient statistics (cost independent of M)."""
    del retention, curation  # stats batches never need the samples; curation is sample level

    def draw(keys, params, pool, num_real, num_contam, inputs_t):
        key_human, key_synth, key_contam, key_detect = keys
        if pool_source:
            mask = _count_mask(num_real, num_samples)
            human = family.data_stats(jax.random.permutation(key_human, pool), mask)
        else:
            key_real_kept, key_contam_kept = jax.random.split(key_detect)
            human = draw_stats(key_human, family.truth, detector.kept(key_real_kept, num_real, inputs_t.detector_fpr))
            if contaminated:
                contam = draw_stats(key_contam, params, detector.kept(key_contam_kept, num_contam, inputs_t.detector_tpr))
                human = family.combine(human, contam)
        return Batch(human, draw_stats(key_synth, params, num_samples - num_real - num_contam))

    return draw


def _sample_draw(family, retention, num_samples, draw_stats, curation, detector, pool_source, contaminated):
    """A generation's batch drawn sample by sample. One noise draw serves all slots: real human
    [0, n_real) under the truth, contaminated [n_real, n_h) and synthetic [n_h, M) under the model;
    disjoint slots, so independent. Without contamination the contaminated slots are empty and
    their statistics are not computed (combining empty statistics changes nothing)."""
    del draw_stats

    def draw(keys, params, pool, num_real, num_contam, inputs_t):
        key_human, key_synth, _, key_detect = keys
        key_verify = jax.random.fold_in(key_synth, 1)  # a stream of its own; the others stay as they were
        noise = family.noise(key_synth, num_samples)
        synth_x = family.transform(params, noise)
        real_w = _count_mask(num_real, num_samples)

        def curate(synth_w):
            return curation.weights(key_verify, synth_x, synth_w, inputs_t.curation_fraction, inputs_t.verifier_noise)

        if pool_source:
            human_x = jax.random.permutation(key_human, pool)
            return _make_batch(family, retention, human_x, real_w, synth_x, curate(1.0 - real_w))
        contam_w = _count_mask(num_real + num_contam, num_samples) - real_w
        real_x = family.transform(family.truth, noise)
        if retention.needs_samples:  # no filter here (refused): contaminated slots pass as human
            real_slot = (real_w > 0).reshape((-1,) + (1,) * (real_x.ndim - 1))
            return SampleBatch(jnp.where(real_slot, real_x, synth_x), real_w + contam_w)
        pass_real, pass_contam = detector.passes(key_detect, num_samples, inputs_t.detector_fpr,
                                                 inputs_t.detector_tpr, real_w.dtype)
        human = family.data_stats(real_x, real_w * pass_real)
        if contaminated:
            human = family.combine(human, family.data_stats(synth_x, contam_w * pass_contam))
        return Batch(human, family.data_stats(synth_x, curate(1.0 - real_w - contam_w)))

    return draw
