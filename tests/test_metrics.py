"""kNN accuracy, the IWAE estimate against an exact likelihood, the metrics JSON."""
import json
import math

import numpy as np
import pytest
import keras
from scipy.special import expit

from aae.metrics import iwae_log_likelihood, knn_accuracy, write_metrics
from aae.models import mlp_decoder, mlp_encoder

rng = np.random.default_rng(0)


def test_knn_accuracy_separable_and_random():
    z = np.repeat(np.arange(10), 50)[:, None] * 10.0 + rng.normal(size=(500, 2))
    y = np.repeat(np.arange(10), 50)
    assert knn_accuracy(z, y, z + 0.1, y) == 1.0
    assert knn_accuracy(rng.normal(size=(2000, 2)), rng.integers(0, 10, 2000),
                        rng.normal(size=(2000, 2)), rng.integers(0, 10, 2000)) < 0.16


def _prior_encoder_constant_decoder(bias):
    """q(z|x) = N(0, I) and p(x|z) independent of z: log p(x) is known exactly."""
    enc = mlp_encoder(2, [8])
    for name in ("z_mean", "z_log_var"):
        layer = enc.get_layer(name)
        layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    dec = mlp_decoder(2, [])
    dec.get_layer("logits").set_weights([np.zeros((2, 784), "float32"), bias])
    return enc, dec


def test_iwae_exact_when_posterior_is_prior():
    bias = rng.normal(size=784).astype("float32")
    enc, dec = _prior_encoder_constant_decoder(bias)
    x = (rng.uniform(size=(6, 784)) < 0.3).astype("float32")
    p = expit(bias.astype("float64"))
    exact = np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=1)
    got = iwae_log_likelihood(enc, dec, x, k=7, batch_size=4)
    np.testing.assert_allclose(got, exact, rtol=1e-5)


def test_iwae_tightens_with_k():
    keras.utils.set_random_seed(0)
    enc, dec = mlp_encoder(2, [16]), mlp_decoder(2, [16])
    x = (rng.uniform(size=(20, 784)) < 0.2).astype("float32")
    k1 = iwae_log_likelihood(enc, dec, x, k=1, seed=1).mean()
    k100 = iwae_log_likelihood(enc, dec, x, k=100, seed=1).mean()
    assert k100 > k1
    np.testing.assert_array_equal(iwae_log_likelihood(enc, dec, x, k=5, seed=2),
                                  iwae_log_likelihood(enc, dec, x, k=5, seed=2))


def test_write_metrics(tmp_path):
    path = write_metrics("nb", {"elbo": np.float32(1.5), "shares": np.arange(3)}, {"epochs": 2}, tmp_path)
    assert path == tmp_path / "metrics" / "nb.json"
    data = json.loads(path.read_text())
    assert data["metrics"] == {"elbo": 1.5, "shares": [0, 1, 2]} and data["parameters"] == {"epochs": 2}
    assert data["runtime"]["backend"] == keras.backend.backend()
    assert data["runtime"]["keras"] == keras.__version__ and data["runtime"]["device"]
    with pytest.raises(ValueError):
        write_metrics("nb", {"bad": math.nan}, {}, tmp_path)
    assert json.loads(path.read_text()) == data  # a failed write leaves the old file
