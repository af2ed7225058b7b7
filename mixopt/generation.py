"""The multi-generation training loop (DESIGN.md section 2), for one seed.

Generation 0 fits theta_0 on M fresh human samples. For t = 1..T, batch t holds
n_h = round(lambda_t M) human samples (``fresh``: new draws from the truth, capped by what is left of
the budget; ``pool``: drawn without replacement from the human samples collected so far, i.e.
generation 0's) and M - n_h synthetic samples from theta_{t-1}; the retention rule forms the
training set and theta_t is fitted on it. Metrics of every theta_t, t = 0..T, are recorded.

Write for one seed, batch with ``jax.vmap``; nothing here jits itself (STYLE.md habits 4-5).
Nothing here is family-specific: the family's functions do the statistics.
"""
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from mixopt.errors import ConfigError
from mixopt.families.base import Family
from mixopt.names import HUMAN_SOURCES, SAMPLERS  # noqa: F401 (re-exported)
from mixopt.policies.retention import Batch, Retention, SampleBatch

# c_t, tpr, fpr, curation q_t, verifier noise, tau_t, window length L_t: all off (L_t: soft_window only)
_STEP_DEFAULTS = (0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0)


class PolicyInputs(NamedTuple):
    """The dynamic inputs of a simulation: arrays, so new values never recompile.

    Attributes:
      human_fraction: (T,) lambda_t for generations 1..T, in [0, 1].
      human_weight: (T,) share of the loss weight on human samples (ignored unless the simulator
        was built with ``weighted=True``).
      human_budget: () fresh human samples that exist in total (``inf`` allowed).
      contamination: (T,) or () c_t, the share of each fresh "human" batch that is in fact
        unlabelled synthetic data from the current model (the polluted web).
      detector_tpr: () probability that the provenance detector flags a synthetic sample.
      detector_fpr: () probability that it flags a real human sample.
      curation_fraction: (T,) or () the share of each batch's synthetic samples that the verifier
        keeps (1: no curation; used only by a simulator built with ``curated=True``).
      verifier_noise: () standard deviation of the noise on the verifier's score.
      temperature: (T,) or () tau_t, the temperature at which the model of generation t - 1
        synthesises batch t (used only by a simulator built with ``tempered=True``).
      window: (T,) or () L_t, the continuous window length of generation t (used only by a
        retention rule that takes it: ``soft_window``, the gradient path's relaxed window).
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
    """``init(key, inputs) -> (state, info)`` runs generation 0; ``step(state, (key, lambda_t,
    omega_t[, c_t, tpr, fpr, q_t, verifier_noise, tau_t, L_t])) -> (state, info)`` runs one later generation;
    ``simulate(key, inputs) -> GenInfo`` runs all T + 1, each leaf with a leading axis of length T + 1."""

    init: Callable
    step: Callable
    simulate: Callable


def simulator(family: Family, retention: Retention, *, num_generations: int, num_samples: int,
              sampler: str = "exact", human_source: str = "fresh", weighted: bool = False,
              relaxed: bool = False, contaminated: bool = False, provenance_filter: bool = False,
              curated: bool = False, tempered: bool = False) -> Simulator:
    """Builds the generation loop for one seed.

    Args:
      family: the model family (truth, sampler, fit, metrics).
      retention: the retention rule.
      num_generations: static T >= 1; generations 0..T are simulated.
      num_samples: static M >= 2, samples per batch.
      sampler: ``"exact"`` draws each batch's sufficient statistics from their sampling distribution
        (cost independent of M); ``"naive"`` draws every sample.
      human_source: ``"fresh"`` or ``"pool"`` (DESIGN.md section 2).
      weighted: use ``inputs.human_weight`` as the human share of the loss weight; otherwise every
        sample weighs the same.
      relaxed: continuous counts n_h = lambda_t M instead of round(lambda_t M) so that the
        simulation is differentiable in lambda (the gradient path of the optimiser). At integer
        counts both agree; the naive sampler gives a fractional last sample a fractional weight.
        The provenance filter's binomial drops become their expectations.
      contaminated: static switch for ``inputs.contamination`` (False: treated as 0, and no draw
        is spent on it).
      provenance_filter: drop the "human" samples the detector flags (contaminated ones with
        probability ``detector_tpr``, real ones with ``detector_fpr``). Contamination applies to
        fresh human data of generations 1..T: of the n_h = round(lambda_t M) slots bought as human,
        n_c = round(c_t n_h) hold samples of the current model, and only the n_h - n_c real ones
        consume the budget (and count in ``human_used``).
      curated: a verifier scores each synthetic sample of a batch by its true log-density plus
        ``inputs.verifier_noise`` times a standard normal, and only the top ``curation_fraction``
        share of them (round(q (M - n_h)), fractional on the relaxed path) is kept (Feng et al.
        2024, arXiv 2406.07515): the batch shrinks. Sample level: needs the naive sampler.
      tempered: the policy sets the synthesis temperature: the model of generation t - 1 samples
        batch t at ``inputs.temperature[t - 1]`` instead of the family's own (the model's params
        must have a ``temperature`` field).

    Raises:
      ConfigError: an unknown sampler or source, a size out of range, or the exact sampler asked
        for where it does not apply.
    """
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
        raise ConfigError("run.sampler = exact does not apply to retention subsample (it needs the samples "
                          f"themselves) or to family {family.name!r} without a statistic sampler; use naive")
    for name, value, minimum in (("generations", num_generations, 1), ("samples", num_samples, 2)):
        if not isinstance(value, int) or value < minimum:
            raise ConfigError(f"scenario.{name} must be an integer >= {minimum}, got {value!r}")
    if tempered and not hasattr(family.truth, "temperature"):
        raise ConfigError(f"policy.temperature does not apply to family {family.name!r}: its model has no "
                          "sampling temperature")
    sample_level = sampler == "naive" or retention.needs_samples
    draw_stats = family.relaxed_stats if relaxed and family.relaxed_stats is not None else family.sample_stats
    pool_source = human_source == "pool"
    slots = jnp.arange(num_samples)

    def count_mask(count):
        # First `count` slots weigh 1; a fractional count (relaxed) gives the next slot a fraction.
        return jnp.clip(count - slots, 0.0, 1.0)

    def make_batch(human_x, num_human, synth_x, synth_w=None):
        # Slots below num_human are human, the rest synthetic (a fractional boundary slot, on the
        # relaxed path, is shared between both by weight); ``synth_w``: curated synthetic weights.
        human_w = count_mask(num_human)
        if retention.needs_samples:
            x = jnp.where((human_w > 0).reshape((-1,) + (1,) * (human_x.ndim - 1)), human_x, synth_x)
            return SampleBatch(x, human_w)
        synth_w = 1.0 - human_w if synth_w is None else synth_w
        return Batch(family.data_stats(human_x, human_w), family.data_stats(synth_x, synth_w))

    def curate(key, synth_x, synth_w, fraction, verifier_noise):
        """The synthetic slots' weights after the verifier keeps the top ``fraction`` of them."""
        if not curated:
            return synth_w
        score = family.log_prob(family.truth, synth_x)
        score = score + verifier_noise * jax.random.normal(key, score.shape, score.dtype)
        score = jnp.where(synth_w > 0, score, -jnp.inf)  # human and contaminated slots rank last
        rank = jnp.zeros(num_samples, synth_w.dtype).at[jnp.argsort(-score)].set(slots.astype(synth_w.dtype))
        return synth_w * jnp.clip(rounded(fraction * jnp.sum(synth_w)) - rank, 0.0, 1.0)

    def init(key, inputs):
        key_human, key_fit = jax.random.split(key)
        dtype = jnp.result_type(inputs.human_fraction)  # carried counts follow the policy's precision
        count = jnp.asarray(num_samples, dtype)
        if sample_level or pool_source:
            x0 = family.sample(key_human, family.truth, num_samples)
            pool = x0 if pool_source else None
            batch0 = make_batch(x0, count, x0)
        else:
            pool = None
            batch0 = Batch(draw_stats(key_human, family.truth, count), family.empty_stats())
        buffer, train = retention.init(batch0)
        params = family.fit(key_fit, train.human, train.synth, None)
        state = GenState(params, buffer, (inputs.human_budget - count).astype(dtype), count, pool)
        return state, _info(params, count, count)

    def rounded(x):
        return x if relaxed else jnp.round(x)

    def human_count(fraction, contamination, human_left):
        """(real human, contaminated) samples among the slots bought as human."""
        wanted = rounded(fraction * num_samples)
        if pool_source or not contaminated:
            return jnp.minimum(wanted, jnp.maximum(human_left, 0.0)) if not pool_source else wanted, 0.0 * wanted
        num_contam = rounded(contamination * wanted)
        return jnp.minimum(wanted - num_contam, jnp.maximum(human_left, 0.0)), num_contam

    def kept(key, count, drop_rate):
        # Samples that pass the detector: Binomial(count, 1 - rate), its mean on the relaxed path.
        if not provenance_filter:
            return count
        if relaxed:
            return count * (1.0 - drop_rate)
        return jax.random.binomial(key, count, 1.0 - drop_rate).astype(count.dtype)

    def draw(keys, state, inputs_t):
        key_human, key_synth, key_contam, key_detect = keys
        num_real, num_contam, tpr, fpr, curation, verifier_noise = inputs_t
        key_verify = jax.random.fold_in(key_synth, 1)  # a stream of its own; the others stay as they were
        bought = num_real + num_contam
        key_real_kept, key_contam_kept = jax.random.split(key_detect)
        if not sample_level:
            if pool_source:
                human = family.data_stats(jax.random.permutation(key_human, state.pool), count_mask(num_real))
            else:
                human = draw_stats(key_human, family.truth, kept(key_real_kept, num_real, fpr))
                if contaminated:
                    human = family.combine(
                        human, draw_stats(key_contam, state.params, kept(key_contam_kept, num_contam, tpr)))
            return Batch(human, draw_stats(key_synth, state.params, num_samples - bought))
        # One noise draw serves all: real human slots [0, n_real) under the truth, contaminated
        # [n_real, n_h) and synthetic [n_h, M) under the model; disjoint slots, so independent.
        noise = family.noise(key_synth, num_samples)
        if pool_source:
            synth_x = family.transform(state.params, noise)
            synth_w = curate(key_verify, synth_x, 1.0 - count_mask(num_real), curation, verifier_noise)
            return make_batch(jax.random.permutation(key_human, state.pool), num_real, synth_x, synth_w)
        real_w = count_mask(num_real)
        contam_w = count_mask(bought) - real_w
        if provenance_filter:
            uniform = jax.random.uniform(key_detect, (num_samples,))
            pass_real = (1.0 - fpr) if relaxed else (uniform >= fpr).astype(real_w.dtype)
            pass_contam = (1.0 - tpr) if relaxed else (uniform >= tpr).astype(real_w.dtype)
        else:
            pass_real = pass_contam = 1.0
        real_x = family.transform(family.truth, noise)
        synth_x = family.transform(state.params, noise)
        if retention.needs_samples:  # no filter here (refused above): contaminated slots pass as human
            real_slot = (real_w > 0).reshape((-1,) + (1,) * (real_x.ndim - 1))
            return SampleBatch(jnp.where(real_slot, real_x, synth_x), real_w + contam_w)
        human = family.combine(family.data_stats(real_x, real_w * pass_real),
                               family.data_stats(synth_x, contam_w * pass_contam))
        synth_w = curate(key_verify, synth_x, 1.0 - real_w - contam_w, curation, verifier_noise)
        return Batch(human, family.data_stats(synth_x, synth_w))

    def step(state, xs):
        key, fraction, weight, *extra = xs  # extra: (c_t, tpr, fpr, q_t, verifier_noise, tau_t, L_t), optional
        contamination, tpr, fpr, curation, verifier_noise, temperature, length = (*extra,
                                                                                   *_STEP_DEFAULTS[len(extra):])
        key_human, key_synth, key_contam, key_detect, key_keep, key_fit = jax.random.split(key, 6)
        num_real, num_contam = human_count(fraction, contamination, state.human_left)
        model = state
        if tempered:
            model = state._replace(params=state.params._replace(
                temperature=jnp.asarray(temperature, jnp.result_type(state.params.temperature))))
        batch = draw((key_human, key_synth, key_contam, key_detect), model,
                     (num_real, num_contam, tpr, fpr, curation, verifier_noise))
        if retention.takes_length:
            buffer, train = retention.update(key_keep, state.buffer, batch, length)
        else:
            buffer, train = retention.update(key_keep, state.buffer, batch)
        params = family.fit(key_fit, train.human, train.synth, weight if weighted else None)
        fresh = 0.0 if pool_source else num_real
        state = GenState(params, buffer, state.human_left - fresh, state.human_used + fresh, state.pool)
        return state, _info(params, num_real, state.human_used)

    def _info(params, num_human, human_used):
        return GenInfo({**family.metrics(params), "human_used": human_used}, num_human)

    def simulate(key, inputs):
        keys = jax.random.split(key, num_generations + 1)
        state, info0 = init(keys[0], inputs)
        dtype = jnp.result_type(inputs.human_fraction)
        per_generation = [jnp.broadcast_to(jnp.asarray(x, dtype), (num_generations,))
                          for x in (inputs.contamination, inputs.detector_tpr, inputs.detector_fpr,
                                    inputs.curation_fraction, inputs.verifier_noise, inputs.temperature,
                                    inputs.window)]
        xs = (keys[1:], inputs.human_fraction, inputs.human_weight, *per_generation)
        _, infos = jax.lax.scan(step, state, xs)
        return jax.tree.map(lambda first, rest: jnp.concatenate([first[None], rest]), info0, infos)

    return Simulator(init, step, simulate)
