"""Measured numbers for the notebooks: latent-space kNN accuracy, IWAE log-likelihood,
and small helpers to write a notebook's metrics JSON."""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["knn_accuracy", "iwae_log_likelihood", "write_metrics"]


def knn_accuracy(z_train, y_train, z_test, y_test, k=5):
    """Accuracy of a k-nearest-neighbour classifier fitted on train codes, scored on test codes."""
    from sklearn.neighbors import KNeighborsClassifier

    clf = KNeighborsClassifier(n_neighbors=k).fit(np.asarray(z_train), np.asarray(y_train))
    return float(clf.score(np.asarray(z_test), np.asarray(y_test)))


def iwae_log_likelihood(encoder, decoder, x, k=1000, batch_size=20, seed=0):
    """Importance-sampled estimate of log p(x) in nats per image (the IWAE bound), shape (n,).

    log p(x) >= log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x), z_i ~ q(z|x); tighter as k grows.
    `encoder` returns [z_mean, z_log_var]; `decoder` returns pixel logits; x: (n, 784) in [0, 1].
    """
    import tensorflow as tf

    log2pi = math.log(2 * math.pi)
    gen = tf.random.Generator.from_seed(seed)

    @tf.function(reduce_retracing=True)
    def bound(xb, eps):
        mean, log_var = encoder(xb, training=False)                     # (b, d)
        z = mean[:, None] + tf.exp(0.5 * log_var)[:, None] * eps         # (b, k, d)
        d = tf.shape(z)[-1]
        logits = tf.reshape(decoder(tf.reshape(z, (-1, d)), training=False),
                            (tf.shape(z)[0], k, -1))
        log_px_z = -tf.reduce_sum(tf.nn.softplus(logits) - xb[:, None] * logits, -1)
        log_pz = -0.5 * tf.reduce_sum(tf.square(z) + log2pi, -1)
        log_qz = -0.5 * tf.reduce_sum(tf.square(eps) + log_var[:, None] + log2pi, -1)
        return tf.reduce_logsumexp(log_px_z + log_pz - log_qz, axis=1) - math.log(k)

    x = np.asarray(x, dtype="float32")
    latent_dim = encoder.output_shape[0][-1]
    out = []
    for i in range(0, len(x), batch_size):
        xb = tf.constant(x[i:i + batch_size])
        eps = gen.normal((xb.shape[0], k, latent_dim))
        out.append(bound(xb, eps).numpy())
    return np.concatenate(out)


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
    """Write `<results_dir>/metrics/<name>.json` holding the metrics and the parameters used."""
    folder = Path(results_dir) / "metrics"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    text = json.dumps({"metrics": _jsonable(metrics), "parameters": _jsonable(parameters)},
                      indent=2, sort_keys=True, allow_nan=False)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}-", suffix=".json", dir=folder)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    os.replace(tmp, path)
    return path
