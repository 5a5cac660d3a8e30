"""Model builders and training models (custom `train_step`) for the notebooks.

Decoders output *logits*: the losses work from logits (one fused, stable pass), and
`decode()` applies the sigmoid when images are wanted.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import keras
import tensorflow as tf
from keras import layers, ops

from .layers import Sampling
from .losses import bce_mean_from_logits, bce_sum_from_logits, check_positive_int, gaussian_kl

__all__ = ["mlp_encoder", "mlp_decoder", "VAE", "Autoencoder", "decode_batched",
           "set_precision", "cpu_has_bf16"]

PRECISIONS = ("auto", "float32", "mixed_bfloat16")


def cpu_has_bf16():
    """True if the CPU does bfloat16 dot products natively (AVX512-BF16 or AMX)."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def set_precision(precision="auto"):
    """Set Keras's global dtype policy before building models; returns the policy's name.

    "auto" picks "mixed_bfloat16" (bfloat16 arithmetic, float32 weights and outputs) on a CPU-only
    machine whose CPU has native bfloat16, where the dense models train faster at the same test
    loss (measured by benchmarks/training_speed.py --levers), and "float32" everywhere else.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        gpu = bool(tf.config.list_physical_devices("GPU"))
        precision = "mixed_bfloat16" if cpu_has_bf16() and not gpu else "float32"
    keras.mixed_precision.set_global_policy(precision)
    return precision


def mlp_encoder(original_dim=784, intermediate_dim=512, latent_dim=2, variational=True,
                activation="relu", code_activation=None, kernel_regularizer=None, name="encoder"):
    """Dense encoder; returns `[z_mean, z_log_var]` if `variational`, else the code."""
    check_positive_int("latent_dim", latent_dim)
    if intermediate_dim:  # 0 or None: no hidden layer
        check_positive_int("intermediate_dim", intermediate_dim)
    x = keras.Input((original_dim,), name="x")
    h = layers.Dense(intermediate_dim, activation=activation, kernel_regularizer=kernel_regularizer,
                     name="hidden")(x) if intermediate_dim else x
    if variational:
        # small heads, kept in float32 under a mixed-precision policy
        z_mean = layers.Dense(latent_dim, name="z_mean", dtype="float32")(h)
        z_log_var = layers.Dense(latent_dim, name="z_log_var", dtype="float32")(h)
        return keras.Model(x, [z_mean, z_log_var], name=name)
    code = layers.Dense(latent_dim, activation=code_activation, dtype="float32",
                        kernel_regularizer=kernel_regularizer, name="code")(h)
    return keras.Model(x, code, name=name)


def mlp_decoder(latent_dim=2, intermediate_dim=512, original_dim=784, activation="relu",
                kernel_regularizer=None, name="decoder"):
    """Dense decoder from codes to pixel *logits* (apply a sigmoid for images)."""
    check_positive_int("latent_dim", latent_dim)
    z = keras.Input((latent_dim,), name="z")
    h = z
    if intermediate_dim:
        h = layers.Dense(intermediate_dim, activation=activation,
                         kernel_regularizer=kernel_regularizer, name="hidden")(z)
    logits = layers.Dense(original_dim, kernel_regularizer=kernel_regularizer, name="logits")(h)
    # under a mixed-precision policy the big layer computes in bfloat16; hand out float32
    logits = layers.Activation("linear", dtype="float32", name="logits_float32")(logits)
    return keras.Model(z, logits, name=name)


def decode_batched(decoder, z, batch_size=4096):
    """Decode codes `z` (n, latent_dim) to pixel probabilities (n, 784) in a few big calls."""
    z = np.asarray(z, dtype="float32")
    out = [ops.convert_to_numpy(ops.sigmoid(decoder(z[i:i + batch_size], training=False)))
           for i in range(0, len(z), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, decoder.output_shape[-1]), "float32")


class _Tracked(keras.Model):
    """Named `keras.metrics.Mean` trackers, one per name in `tracked`, shown in the progress bar."""

    tracked = ("loss",)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.trackers = {n: keras.metrics.Mean(name=n) for n in self.tracked}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def _update(self, terms):
        for name, value in terms.items():
            self.trackers[name].update_state(value)
        return {name: t.result() for name, t in self.trackers.items()}


class _LossTracking(_Tracked):
    """Shared plumbing: one-loss tape-based step over `losses_for`, on top of `_Tracked`."""

    def losses_for(self, x, training):
        """Return a dict of scalar losses; must include "loss", the one that is minimised."""
        raise NotImplementedError

    def train_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            terms = self.losses_for(x, training=True)
        grads = tape.gradient(terms["loss"], self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        return self._update(terms)

    def test_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self._update(self.losses_for(x, training=False))


class VAE(_LossTracking):
    """Variational autoencoder; loss = BCE summed over pixels + Gaussian KL (nats per image)."""

    tracked = ("loss", "reconstruction_loss", "kl_loss")

    def __init__(self, encoder, decoder, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.encoder, self.decoder = encoder, decoder
        self.sampling = Sampling(seed=seed, name="sampling")

    def call(self, x, training=False):
        z_mean, z_log_var = self.encoder(x, training=training)
        return self.decoder(self.sampling([z_mean, z_log_var]), training=training)

    def losses_for(self, x, training):
        z_mean, z_log_var = self.encoder(x, training=training)
        logits = self.decoder(self.sampling([z_mean, z_log_var]), training=training)
        rec = ops.mean(bce_sum_from_logits(x, logits))
        kl = ops.mean(gaussian_kl(z_mean, z_log_var))
        return {"loss": rec + kl, "reconstruction_loss": rec, "kl_loss": kl}

    def encode(self, x, batch_size=4096):
        """Posterior means (n, latent_dim) of images x (n, 784)."""
        return self.encoder.predict(x, batch_size=batch_size, verbose=0)[0]

    def decode(self, z):
        """Pixel probabilities (n, 784) for codes z (n, latent_dim)."""
        return decode_batched(self.decoder, z)


class Autoencoder(_LossTracking):
    """Deterministic autoencoder; loss = BCE averaged over pixels + code penalty + weight decay.

    `code_penalty` is any callable on the code batch (e.g. `aae.losses.KLSparsity`); it is
    added explicitly rather than as a Keras activity regularizer, whose batch scaling
    changed between Keras versions.
    """

    tracked = ("loss", "reconstruction_loss", "penalty")

    def __init__(self, encoder, decoder, code_penalty=None, **kwargs):
        super().__init__(**kwargs)
        self.encoder, self.decoder = encoder, decoder
        self.code_penalty = code_penalty

    def call(self, x, training=False):
        return self.decoder(self.encoder(x, training=training), training=training)

    def losses_for(self, x, training):
        code = self.encoder(x, training=training)
        logits = self.decoder(code, training=training)
        rec = ops.mean(bce_mean_from_logits(x, logits))
        penalty = ops.zeros(())
        if self.code_penalty is not None:
            penalty = penalty + self.code_penalty(code)
        if self.encoder.losses or self.decoder.losses:  # weight decay
            penalty = penalty + ops.sum(ops.stack(self.encoder.losses + self.decoder.losses))
        return {"loss": rec + penalty, "reconstruction_loss": rec, "penalty": penalty}

    def encode(self, x, batch_size=4096):
        """Codes (n, latent_dim) of images x (n, 784)."""
        return self.encoder.predict(x, batch_size=batch_size, verbose=0)

    def decode(self, z):
        """Pixel probabilities (n, 784) for codes z (n, latent_dim)."""
        return decode_batched(self.decoder, z)
