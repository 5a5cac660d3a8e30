"""Losses against closed forms, Monte Carlo estimates and independent NumPy/SciPy code."""
import numpy as np
import pytest
import keras
from keras import ops
from scipy.special import expit, rel_entr

from aae.losses import (KLSparsity, L1Activity, bce_mean_from_logits, bce_sum,
                        bce_sum_from_logits, gaussian_kl, weight_decay)
from aae.checks import positive_int

rng = np.random.default_rng(0)


def np_(t):
    return ops.convert_to_numpy(t)


def test_gaussian_kl_closed_form():
    mean = rng.normal(size=(5, 3)).astype("float32")
    log_var = rng.normal(size=(5, 3)).astype("float32")
    var = np.exp(log_var)
    expected = 0.5 * np.sum(var + mean ** 2 - 1.0 - log_var, axis=1)
    np.testing.assert_allclose(np_(gaussian_kl(mean, log_var)), expected, rtol=1e-5)
    assert np_(gaussian_kl(np.zeros((1, 4), "float32"), np.zeros((1, 4), "float32")))[0] == 0.0


def test_gaussian_kl_monte_carlo():
    mean, log_var = np.array([0.7, -1.2]), np.array([-0.5, 0.4])
    std = np.exp(0.5 * log_var)
    z = mean + std * rng.standard_normal((400_000, 2))
    log_q = -0.5 * np.sum(((z - mean) / std) ** 2 + log_var + np.log(2 * np.pi), axis=1)
    log_p = -0.5 * np.sum(z ** 2 + np.log(2 * np.pi), axis=1)
    mc = np.mean(log_q - log_p)
    kl = np_(gaussian_kl(mean[None].astype("float32"), log_var[None].astype("float32")))[0]
    assert abs(mc - kl) < 0.01, (mc, kl)


def test_bce_against_numpy():
    x = rng.uniform(size=(4, 784)).astype("float32")
    logits = rng.normal(scale=3, size=(4, 784)).astype("float32")
    p = expit(logits.astype("float64"))
    expected = -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=1)
    np.testing.assert_allclose(np_(bce_sum_from_logits(x, logits)), expected, rtol=1e-5)
    np.testing.assert_allclose(np_(bce_sum(x, p.astype("float32"))), expected, rtol=1e-4)
    np.testing.assert_allclose(np_(bce_mean_from_logits(x, logits)), expected / 784, rtol=1e-5)
    # summed BCE = Keras's mean BCE x original_dim
    keras_mean = np_(keras.losses.binary_crossentropy(x, logits, from_logits=True))
    np.testing.assert_allclose(keras_mean * 784, expected, rtol=1e-4)


def test_bce_from_logits_is_stable():
    x = np.array([[1.0, 0.0]], "float32")
    logits = np.array([[-200.0, 200.0]], "float32")  # confidently wrong: 200 nats each
    np.testing.assert_allclose(np_(bce_sum_from_logits(x, logits)), [400.0], rtol=1e-6)


def test_l1_activity():
    h = rng.normal(size=(8, 16)).astype("float32")
    np.testing.assert_allclose(float(L1Activity(1e-3)(h)), 1e-3 * np.abs(h).sum() / 8, rtol=1e-5)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_kl_sparsity_against_rel_entr(reduction):
    h = rng.uniform(0.01, 0.6, size=(64, 32)).astype("float32")
    p, beta = 0.05, 3.0
    rho = h.mean(axis=0).astype("float64")
    kl = rel_entr(p, rho) + rel_entr(1 - p, 1 - rho)
    expected = beta * (kl.sum() if reduction == "sum" else kl.mean())
    got = float(KLSparsity(p, beta, reduction)(h))
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    # zero exactly when every unit's mean activation equals the target
    assert abs(float(KLSparsity(p, beta, reduction)(np.full((4, 8), p, "float32")))) < 1e-6


def test_penalties_round_trip_through_config():
    for reg in (L1Activity(2e-5), KLSparsity(0.1, 6.0, "mean")):
        clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(reg))
        assert type(clone) is type(reg) and clone.get_config() == reg.get_config()


def test_weight_decay():
    assert weight_decay(0) is None
    reg = weight_decay(0.003)
    w = rng.normal(size=(5, 5)).astype("float32")
    np.testing.assert_allclose(float(reg(w)), 0.003 * np.sum(w ** 2), rtol=1e-5)


@pytest.mark.parametrize("p", [0, 1, -0.1, 1.5])
def test_bad_p(p):
    with pytest.raises(ValueError, match="p must lie strictly between 0 and 1, got .*target mean activation"):
        KLSparsity(p=p)


@pytest.mark.parametrize("make", [lambda: KLSparsity(beta=-1), lambda: L1Activity(-1e-7),
                                  lambda: weight_decay(-0.1), lambda: KLSparsity(beta=float("nan"))])
def test_negative_weights(make):
    with pytest.raises(ValueError, match="must be a finite number >= 0"):
        make()


def test_bad_reduction():
    with pytest.raises(ValueError, match=r"reduction must be one of \('sum', 'mean'\), got 'median'"):
        KLSparsity(reduction="median")


@pytest.mark.parametrize("value", [0, -3, 2.5, True])
def test_latent_dim_check(value):
    with pytest.raises(ValueError, match="latent_dim must be an integer >= 1"):
        positive_int("latent_dim", value)
