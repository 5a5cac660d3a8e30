"""Model builders and training models for the notebooks: the VAE and the autoencoders.

Their losses are one number each, so they override `compute_loss` and Keras's own `train_step`
takes the gradients on TensorFlow, JAX and PyTorch alike.

Decoders output *logits*: the losses work from logits (one fused, stable pass), and
`decode()` applies the sigmoid when images are wanted.
"""
from __future__ import annotations

import numpy as np
import keras
from keras import layers, ops

from .layers import Sampling
from .checks import fraction, positive_int
from .losses import bce_mean_from_logits, bce_sum_from_logits, gaussian_kl
from .phases import _Tracked

__all__ = ["mlp_encoder", "mlp_decoder", "dense_stack", "encoder_heads", "VAE", "Autoencoder", "batched",
           "decode_batched", "encode_batched"]


def dense_stack(h, hidden, activation="relu", kernel_regularizer=None, prefix="hidden",
                kernel_initializer="glorot_uniform", seed=None, dropout=0.0):
    """Dense layers of widths `hidden` (a sequence; empty: none) on the tensor `h`.

    `seed`: None draws each layer's initial weights from Keras's global seed; an integer gives
    layer i (from 0) the initializer `kernel_initializer` seeded with `seed + i`, so a network's
    weights do not depend on what was built before it. `dropout` > 0 adds a Dropout layer of that
    rate after each Dense layer (active only in training calls; seeded from `seed` too).
    """
    if isinstance(hidden, (int, np.integer)):
        raise ValueError(f"hidden must be a list of layer widths, e.g. [{hidden}], got {hidden!r}")
    if dropout:
        fraction("dropout", dropout, " Use 0 for no dropout.")
    for i, units in enumerate(hidden):
        init = kernel_initializer
        if seed is not None:
            init = keras.initializers.get(kernel_initializer)
            init = type(init).from_config({**init.get_config(), "seed": seed + i})
        h = layers.Dense(positive_int("hidden units", units), activation=activation,
                         kernel_initializer=init, kernel_regularizer=kernel_regularizer,
                         name=f"{prefix}{i + 1}")(h)
        if dropout:
            h = layers.Dropout(dropout, seed=None if seed is None else seed + 100 + i,
                               name=f"{prefix}{i + 1}_dropout")(h)
    return h


def mlp_encoder(latent_dim=2, hidden=(512,), original_dim=784, variational=True,
                activation="relu", code_activation=None, kernel_regularizer=None, dropout=0.0,
                name="encoder"):
    """Dense encoder x (n, original_dim) -> `[z_mean, z_log_var]` if `variational`, else the code.

    `hidden`: widths of the hidden layers ([] for none, as in a one-layer code); `dropout` > 0:
    dropout of that rate after each of them while training.
    """
    positive_int("latent_dim", latent_dim)
    x = keras.Input((original_dim,), name="x")
    h = dense_stack(x, hidden, activation, kernel_regularizer, dropout=dropout)
    return encoder_heads(x, h, latent_dim, variational, code_activation, kernel_regularizer, name)


def encoder_heads(x, h, latent_dim, variational, code_activation=None, kernel_regularizer=None,
                  name="encoder"):
    """The encoder model from input `x` and features `h`: heads `[z_mean, z_log_var]` if
    `variational`, else one code layer; small and kept in float32 under mixed precision."""
    if variational:
        z_mean = layers.Dense(latent_dim, name="z_mean", dtype="float32")(h)
        z_log_var = layers.Dense(latent_dim, name="z_log_var", dtype="float32")(h)
        return keras.Model(x, [z_mean, z_log_var], name=name)
    code = layers.Dense(latent_dim, activation=code_activation, dtype="float32",
                        kernel_regularizer=kernel_regularizer, name="code")(h)
    return keras.Model(x, code, name=name)


def mlp_decoder(latent_dim=2, hidden=(512,), original_dim=784, activation="relu",
                kernel_regularizer=None, dropout=0.0, name="decoder"):
    """Dense decoder from codes to pixel *logits* (apply a sigmoid for images); `dropout` as in
    `mlp_encoder`."""
    z = keras.Input((positive_int("latent_dim", latent_dim),), name="z")
    h = dense_stack(z, hidden, activation, kernel_regularizer, dropout=dropout)
    logits = layers.Dense(original_dim, kernel_regularizer=kernel_regularizer, name="logits")(h)
    # under a mixed-precision policy the big layer computes in bfloat16; hand out float32
    logits = layers.Activation("linear", dtype="float32", name="logits_float32")(logits)
    return keras.Model(z, logits, name=name)


def batched(fn, x, batch_size=4096):
    """`fn` (a Keras model or any callable on a batch) applied to `x` in slices of
    `batch_size`, as one float NumPy array; a model is called directly, in inference mode
    (`predict` would trace a new function for every model)."""
    x = np.asarray(x, "float32")
    call = (lambda b: fn(b, training=False)) if isinstance(fn, keras.Model) else fn
    out = [ops.convert_to_numpy(call(x[i:i + batch_size])) for i in range(0, len(x), batch_size)]
    if not out:
        raise ValueError("batched() got no inputs (an empty array)")
    return np.concatenate(out)


def encode_batched(encoder, x, batch_size=4096):
    """Codes (n, latent_dim) of images x; the mean for an encoder returning [z_mean, z_log_var]."""
    def code(b):
        out = encoder(b, training=False)
        return out[0] if isinstance(out, (list, tuple)) else out
    return batched(code, x, batch_size).astype("float32")


def decode_batched(decoder, z, batch_size=4096):
    """Decode codes `z` (n, latent_dim) to pixel probabilities (n, 784) in a few big calls."""
    return batched(lambda b: ops.sigmoid(decoder(b, training=False)), z, batch_size).astype("float32")


class _LossModel(_Tracked):
    """A model whose loss is one number: Keras's own `train_step` takes the gradients on every
    backend; `compute_loss` adds up `loss_terms` and records each term in its tracker."""

    def loss_terms(self, x, y_pred):
        """Dict of scalar terms from the batch x and `call`'s output; "loss" is minimised."""
        raise NotImplementedError

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        terms = self.loss_terms(x, y_pred)
        self._update(terms, ops.shape(x)[0])
        return terms["loss"]

    def mean_loss_terms(self, x, batch_size=1000):
        """`loss_terms` averaged over images x (n, 784) in inference mode, as floats: the numbers
        `evaluate` reports, computed in eager batches. A cell that evaluates several models this
        way traces no compiled function per model (TensorFlow warns about "retracing" there)."""
        x = np.asarray(x, "float32")
        sums, n = {}, 0
        for i in range(0, len(x), batch_size):
            xb = ops.convert_to_tensor(x[i:i + batch_size])
            terms = self.loss_terms(xb, self(xb, training=False))
            for name, value in terms.items():
                sums[name] = sums.get(name, 0.0) + float(ops.convert_to_numpy(value)) * len(xb)
            n += len(xb)
        if not n:
            raise ValueError("mean_loss_terms() got no inputs (an empty array)")
        return {name: total / n for name, total in sums.items()}


class VAE(_LossModel):
    """Variational autoencoder; loss = BCE summed over pixels + Gaussian KL (nats per image)."""

    tracked = ("reconstruction_loss", "kl_loss")

    def __init__(self, encoder, decoder, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.encoder, self.decoder = encoder, decoder
        self.sampling = Sampling(seed=seed, name="sampling")

    def call(self, x, training=False):
        """What the loss needs: the posterior's parameters and the logits of a sampled code."""
        z_mean, z_log_var = self.encoder(x, training=training)
        logits = self.decoder(self.sampling([z_mean, z_log_var]), training=training)
        return {"z_mean": z_mean, "z_log_var": z_log_var, "logits": logits}

    def loss_terms(self, x, y_pred):
        rec = ops.mean(bce_sum_from_logits(x, y_pred["logits"]))
        kl = ops.mean(gaussian_kl(y_pred["z_mean"], y_pred["z_log_var"]))
        return {"loss": rec + kl, "reconstruction_loss": rec, "kl_loss": kl}

    def encode(self, x, batch_size=4096):
        """Posterior means (n, latent_dim) of images x (n, 784)."""
        return encode_batched(self.encoder, x, batch_size)

    def decode(self, z):
        """Pixel probabilities (n, 784) for codes z (n, latent_dim)."""
        return decode_batched(self.decoder, z)


class Autoencoder(_LossModel):
    """Deterministic autoencoder; loss = BCE averaged over pixels + code penalty + weight decay.

    `code_penalty` is any callable on the code batch (e.g. `aae.losses.KLSparsity`); it is
    added explicitly rather than as a Keras activity regularizer, whose batch scaling
    changed between Keras versions. Weight decay comes from the layers' kernel regularizers
    through `self.losses`, which every backend's trainer evaluates at the current weights.
    """

    tracked = ("reconstruction_loss", "penalty")
    # On JAX, the k scanned steps laid out in one program: the cheapest step here, so per-step
    # overhead counts most (benchmarks/scan_speed.py: 1.24x Keras's loop against 1.14x at unroll 1).
    scan_unroll = True

    def __init__(self, encoder, decoder, code_penalty=None, **kwargs):
        super().__init__(**kwargs)
        self.encoder, self.decoder = encoder, decoder
        self.code_penalty = code_penalty

    def call(self, x, training=False):
        """What the loss needs: the code and the pixel logits of its reconstruction."""
        code = self.encoder(x, training=training)
        return {"code": code, "logits": self.decoder(code, training=training)}

    def loss_terms(self, x, y_pred):
        rec = ops.mean(bce_mean_from_logits(x, y_pred["logits"]))
        penalty = ops.zeros(())
        if self.code_penalty is not None:
            penalty = penalty + self.code_penalty(y_pred["code"])
        if self.losses:  # weight decay
            penalty = penalty + ops.sum(ops.stack([ops.cast(l, "float32") for l in self.losses]))
        return {"loss": rec + penalty, "reconstruction_loss": rec, "penalty": penalty}

    def encode(self, x, batch_size=4096):
        """Codes (n, latent_dim) of images x (n, 784)."""
        return encode_batched(self.encoder, x, batch_size)

    def decode(self, z):
        """Pixel probabilities (n, 784) for codes z (n, latent_dim)."""
        return decode_batched(self.decoder, z)
