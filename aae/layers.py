"""Shared Keras layers. `Sampling` is used by the VAE and the Gaussian-posterior AAE."""
from __future__ import annotations

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="aae")
class Sampling(layers.Layer):
    """Reparameterisation trick: z = z_mean + exp(z_log_var / 2) * eps, eps ~ N(0, I).

    `z_log_var` is the log-variance (not log-sigma). Seeded through
    `keras.random.SeedGenerator`, so a seeded model draws the same noise on every run.
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        eps = keras.random.normal(ops.shape(z_mean), dtype=z_mean.dtype, seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * eps

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}
