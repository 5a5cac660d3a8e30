"""Measured numbers for the notebooks: latent-space kNN accuracy, IWAE log-likelihood,
and small helpers to write a notebook's metrics JSON."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .files import atomic_path

__all__ = ["knn_accuracy", "iwae_log_likelihood", "write_metrics",
           "parzen_log_likelihood", "select_parzen_sigma", "mean_and_stderr"]


def knn_accuracy(z_train, y_train, z_test, y_test, k=5):
    """Accuracy of a k-nearest-neighbour classifier fitted on train codes, scored on test codes."""
    from sklearn.neighbors import KNeighborsClassifier

    clf = KNeighborsClassifier(n_neighbors=k).fit(np.asarray(z_train), np.asarray(y_train))
    return float(clf.score(np.asarray(z_test), np.asarray(y_test)))


def iwae_log_likelihood(encoder, decoder, x, k=1000, batch_size=20, seed=0):
    """Importance-sampled estimate of log p(x) in nats per image (the IWAE bound), shape (n,).

    log p(x) >= log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x), z_i ~ q(z|x); tighter as k grows.
    `encoder` returns [z_mean, z_log_var]; `decoder` returns pixel logits; x: (n, 784) in [0, 1].
    Any Keras backend; the noise comes from `keras.random` seeded by `seed`, so each backend
    draws its own stream (same estimate up to Monte Carlo error).
    """
    from keras import ops, random

    log2pi = math.log(2 * math.pi)
    seed_generator = random.SeedGenerator(seed)
    x = np.asarray(x, dtype="float32")
    out = []
    for i in range(0, len(x), batch_size):
        xb = ops.convert_to_tensor(x[i:i + batch_size])
        mean, log_var = encoder(xb, training=False)                      # (b, d)
        b, d = mean.shape
        eps = random.normal((b, k, d), seed=seed_generator)
        z = mean[:, None] + ops.exp(0.5 * log_var)[:, None] * eps         # (b, k, d)
        logits = ops.reshape(decoder(ops.reshape(z, (b * k, d)), training=False), (b, k, -1))
        log_px_z = -ops.sum(ops.softplus(logits) - xb[:, None] * logits, axis=-1)
        log_pz = -0.5 * ops.sum(ops.square(z) + log2pi, axis=-1)
        log_qz = -0.5 * ops.sum(ops.square(eps) + log_var[:, None] + log2pi, axis=-1)
        bound = ops.logsumexp(log_px_z + log_pz - log_qz, axis=1) - math.log(k)
        out.append(ops.convert_to_numpy(bound))
    return np.concatenate(out) if out else np.zeros((0,), "float32")


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def write_metrics(name, metrics, parameters, results_dir="results"):
    """Write `<results_dir>/metrics/<name>.json` holding the metrics, the parameters used and
    where they were measured (`aae.runtime.runtime_info()`: backend, versions, device)."""
    from .runtime import runtime_info

    path = Path(results_dir) / "metrics" / f"{name}.json"
    text = json.dumps({"metrics": _jsonable(metrics), "parameters": _jsonable(parameters),
                       "runtime": runtime_info()}, indent=2, sort_keys=True, allow_nan=False)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n")
    return path


def parzen_log_likelihood(x, samples, sigma, batch_size=500, sample_batch_size=5000):
    """Log-likelihood (nats) of each row of x under a Gaussian Parzen window on `samples`.

    log p(x) = logsumexp_j(-||x - s_j||^2 / (2 sigma^2)) - log m - d/2 log(2 pi sigma^2), with m
    samples of d dims. x: (n, d), samples: (m, d). `sigma` a float gives shape (n,); a sequence
    of sigmas gives (n, len(sigma)) from one pass over the distances. Memory is bounded by
    batch_size x sample_batch_size: distances come from ||x||^2 + ||s||^2 - 2 x.s chunk by
    chunk, folded into a running logsumexp in float64.
    """
    sigmas = np.atleast_1d(np.asarray(sigma, dtype=np.float64))
    if sigmas.ndim != 1 or len(sigmas) == 0 or not np.all(np.isfinite(sigmas) & (sigmas > 0)):
        raise ValueError(f"sigma must be a number > 0 or a non-empty sequence of them, got {sigma!r}.")
    x, samples = np.asarray(x), np.asarray(samples)
    if x.ndim != 2 or samples.ndim != 2 or x.shape[1] != samples.shape[1] or len(samples) == 0:
        raise ValueError(f"x (n, d) and samples (m, d) must be 2-D with the same d and m >= 1, "
                         f"got {x.shape} and {samples.shape}; flatten images to (n, 784).")
    # Distances do not change under a shift; centring shrinks the norms, so less cancellation in
    # ||x||^2 + ||s||^2 - 2 x.s when the cross term is computed in float32 (the costly matmul).
    centre = samples.mean(axis=0, dtype=np.float64)
    s32 = (samples - centre).astype(np.float32)
    s_sq = np.einsum("ij,ij->i", s32, s32, dtype=np.float64)
    inv = 1.0 / (2.0 * sigmas ** 2)                                  # (k,)
    m, d = samples.shape
    const = -np.log(m) - 0.5 * d * np.log(2 * np.pi * sigmas ** 2)  # (k,)
    out = np.empty((len(x), len(sigmas)))
    for i in range(0, len(x), batch_size):
        xb = (x[i:i + batch_size] - centre).astype(np.float32)
        x_sq = np.einsum("ij,ij->i", xb, xb, dtype=np.float64)
        run_max = np.full((len(xb), len(sigmas)), -np.inf)
        run_sum = np.zeros((len(xb), len(sigmas)))
        for j in range(0, m, sample_batch_size):
            sb = s32[j:j + sample_batch_size]
            d2 = x_sq[:, None] + s_sq[None, j:j + len(sb)] - 2.0 * (xb @ sb.T).astype(np.float64)
            np.maximum(d2, 0.0, out=d2)
            for k, c in enumerate(inv):
                e = -c * d2                                            # exponents, (b, chunk)
                new_max = np.maximum(run_max[:, k], e.max(axis=1))
                run_sum[:, k] = (run_sum[:, k] * np.exp(run_max[:, k] - new_max)
                                 + np.exp(e - new_max[:, None]).sum(axis=1))
                run_max[:, k] = new_max
        out[i:i + len(xb)] = run_max + np.log(run_sum) + const
    return out[:, 0] if np.ndim(sigma) == 0 else out


def select_parzen_sigma(x_val, samples, sigmas, **kwargs):
    """Return `(best_sigma, mean_lls)`: the sigma with the best mean validation log-likelihood.

    The protocol of Goodfellow et al. (2014), used by the AAE paper: pick sigma on a validation
    set held out of training, then report the test log-likelihood at that sigma.
    kwargs go to `parzen_log_likelihood` (batch sizes).
    """
    sigmas = np.asarray(sigmas, dtype=np.float64).reshape(-1)
    mean_lls = parzen_log_likelihood(x_val, samples, sigmas, **kwargs).mean(axis=0)
    return float(sigmas[int(np.argmax(mean_lls))]), mean_lls


def mean_and_stderr(values):
    """Mean and standard error of the mean (ddof=1) of a 1-D array, as floats."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(values) < 2:
        raise ValueError(f"need at least 2 values for a standard error, got {len(values)}.")
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values)))
