"""The Sampling layer: the log-variance reading, seeding, serialisation."""
import numpy as np
import keras

from aae.layers import Sampling


def test_moments_follow_log_variance():
    n = 200_000
    mean = np.tile(np.array([[1.5, -2.0]], "float32"), (n, 1))
    log_var = np.tile(np.array([[np.log(4.0), np.log(0.25)]], "float32"), (n, 1))
    z = keras.ops.convert_to_numpy(Sampling(seed=1)([mean, log_var]))
    np.testing.assert_allclose(z.mean(0), [1.5, -2.0], atol=0.02)
    np.testing.assert_allclose(z.std(0), [2.0, 0.5], rtol=0.01)  # std = exp(log_var / 2)


def test_seed_reproducible():
    m = np.zeros((3, 2), "float32")
    a = keras.ops.convert_to_numpy(Sampling(seed=7)([m, m]))
    b = keras.ops.convert_to_numpy(Sampling(seed=7)([m, m]))
    np.testing.assert_array_equal(a, b)


def test_saves_in_a_model(tmp_path):
    mean_in, var_in = keras.Input((2,)), keras.Input((2,))
    model = keras.Model([mean_in, var_in], Sampling(seed=3, name="s")([mean_in, var_in]))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.get_layer("s").seed == 3
