"""A naive, plain-numpy reference of DESIGN.md section 2: one seed at a time, every sample drawn,
per-sample loss weights. Written from the design text, independently of mixopt's code."""
import numpy as np


def _fit(x, is_human, human_weight, estimator, fit):
    num_h, num_s = is_human.sum(), (~is_human).sum()
    if human_weight is None:
        weights = np.full(len(x), 1.0 / len(x))
    elif num_h == 0:
        weights = np.where(is_human, 0.0, 1.0 / num_s)
    elif num_s == 0:
        weights = np.where(is_human, 1.0 / num_h, 0.0)
    else:
        weights = np.where(is_human, human_weight / num_h, (1 - human_weight) / num_s)
    mean = weights @ x
    if fit == "mean":
        return mean, np.eye(x.shape[1])
    centred = x - mean
    cov = (centred * weights[:, None]).T @ centred
    if estimator == "unbiased":
        cov = cov / (1.0 - np.sum(weights**2))
    return mean, cov


def _metrics(mean, cov):
    dim = len(mean)
    inv = np.linalg.inv(cov)
    logdet = np.linalg.slogdet(cov)[1]
    return {
        "variance_ratio": np.trace(cov) / dim,
        "mean_shift": np.linalg.norm(mean),
        "log_det_ratio": logdet,
        "kl": 0.5 * (np.trace(inv) + mean @ inv @ mean - dim + logdet),
    }


def reference_run(rng, *, generations, samples, human_fraction, human_weight=None, human_source="fresh",
                  retention="replace", window=3, human_budget=np.inf, dim=1, estimator="mle", fit="full"):
    """One seed. Returns {metric: [value for t = 0..T]} including human_used."""
    fractions = np.broadcast_to(human_fraction, (generations,))
    weights = None if human_weight is None else np.broadcast_to(human_weight, (generations,))
    first = rng.standard_normal((samples, dim))
    batches = [(first, np.ones(samples, bool))]
    left, used = human_budget - samples, samples
    mean, cov = _fit(first, batches[0][1], None, estimator, fit)
    out = {key: [value] for key, value in _metrics(mean, cov).items()}
    out["human_used"] = [used]
    for t in range(1, generations + 1):
        num_h = int(np.round(fractions[t - 1] * samples))
        if human_source == "fresh":
            num_h = int(min(num_h, max(left, 0)))
            human = rng.standard_normal((num_h, dim))
            left, used = left - num_h, used + num_h
        else:
            human = first[rng.choice(samples, num_h, replace=False)]
        synth = rng.multivariate_normal(mean, cov, samples - num_h) if num_h < samples else np.zeros((0, dim))
        batches.append((np.concatenate([human, synth]), np.arange(samples) < num_h))
        if retention == "replace":
            kept = batches[-1:]
        elif retention == "accumulate":
            kept = batches
        elif retention == "window":
            kept = batches[-window:]
        else:
            union_x = np.concatenate([b[0] for b in batches])
            union_h = np.concatenate([b[1] for b in batches])
            pick = rng.choice(len(union_x), samples, replace=False)
            kept = [(union_x[pick], union_h[pick])]
        x = np.concatenate([b[0] for b in kept])
        is_human = np.concatenate([b[1] for b in kept])
        mean, cov = _fit(x, is_human, None if weights is None else weights[t - 1], estimator, fit)
        for key, value in _metrics(mean, cov).items():
            out[key].append(value)
        out["human_used"].append(used)
    return {key: np.asarray(value) for key, value in out.items()}


def reference_runs(seed, num_seeds, **kwargs):
    rng = np.random.default_rng(seed)
    runs = [reference_run(rng, **kwargs) for _ in range(num_seeds)]
    return {key: np.stack([r[key] for r in runs]) for key in runs[0]}
