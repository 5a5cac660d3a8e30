"""aae.losses.NonNegativity (the NCAE penalty): its value against NumPy, saving and loading a
model that uses it, and what it does in training (negative weights shrink)."""
import numpy as np
import pytest
import keras

from aae.data import load_mnist
from aae.losses import KLSparsity, NonNegativity
from aae.models import Autoencoder, mlp_decoder, mlp_encoder


def _numpy_penalty(w, alpha):
    return alpha / 2 * np.sum(np.minimum(w, 0.0) ** 2)


def test_penalty_equals_numpy():
    rng = np.random.default_rng(0)
    for shape, alpha in (((784, 196), 0.003), ((7, 3), 1.5), ((10,), 0.0)):
        w = rng.normal(0.0, 0.1, size=shape).astype("float32")
        got = float(keras.ops.convert_to_numpy(NonNegativity(alpha)(w)))
        assert got == pytest.approx(_numpy_penalty(w.astype("float64"), alpha), rel=1e-5, abs=1e-12)
    # positive weights cost nothing; a single negative weight costs alpha / 2 * w^2
    w = np.array([[0.5, 2.0], [0.0, -0.2]], dtype="float32")
    assert float(keras.ops.convert_to_numpy(NonNegativity(0.1)(w))) == pytest.approx(0.05 * 0.04)
    assert float(keras.ops.convert_to_numpy(NonNegativity(0.1)(np.abs(w)))) == 0.0


@pytest.mark.parametrize("alpha", [-0.1, float("nan"), "0.003", None])
def test_bad_alpha(alpha):
    with pytest.raises(ValueError, match="alpha must be a finite number >= 0"):
        NonNegativity(alpha)


def test_model_with_it_saves_and_loads(tmp_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    outputs = keras.layers.Dense(4, kernel_regularizer=NonNegativity(0.02), name="dense")(inputs)
    model = keras.Model(inputs, outputs)
    w = model.get_layer("dense").kernel
    expected = _numpy_penalty(keras.ops.convert_to_numpy(w).astype("float64"), 0.02)
    assert expected > 0
    before = float(keras.ops.convert_to_numpy(model.losses[0]))
    assert before == pytest.approx(expected, rel=1e-5)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    reg = loaded.get_layer("dense").kernel_regularizer
    assert isinstance(reg, NonNegativity) and reg.get_config() == {"alpha": 0.02}
    assert float(keras.ops.convert_to_numpy(loaded.losses[0])) == pytest.approx(before, rel=1e-6)
    x = np.random.default_rng(1).normal(size=(3, 6)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x)), rtol=1e-6)


def _train(x, alpha, epochs=4):
    keras.utils.set_random_seed(0)
    reg = NonNegativity(alpha) if alpha else None
    encoder = mlp_encoder(16, [], variational=False, code_activation="sigmoid", kernel_regularizer=reg)
    decoder = mlp_decoder(16, [], kernel_regularizer=reg)
    model = Autoencoder(encoder, decoder, code_penalty=KLSparsity(0.05, 3.0, "mean"))
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(x, epochs=epochs, batch_size=128, verbose=0)
    return keras.ops.convert_to_numpy(encoder.get_layer("code").kernel).astype("float64")


def test_training_with_it_shrinks_the_negative_weights(mnist_dir):
    (x, _), _ = load_mnist(mnist_dir, train_size=1024, test_size=1)
    free, constrained = _train(x, 0.0), _train(x, 0.1)
    neg_free, neg_constrained = np.sum(np.minimum(free, 0) ** 2), np.sum(np.minimum(constrained, 0) ** 2)
    # same seed, same data: the penalty alone makes the difference
    assert neg_constrained < 0.5 * neg_free, (neg_constrained, neg_free)
    assert np.min(constrained) > np.min(free)
    assert np.mean(constrained >= 0) > np.mean(free >= 0)
