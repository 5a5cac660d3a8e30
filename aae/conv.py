"""Convolutional encoder and decoder builders, drop-in for `aae.models.mlp_encoder/mlp_decoder`.

The encoder halves the image side with each strided `Conv2D` (28 -> 14 -> 7 for two filters
entries), flattens, and ends in the same heads as the dense encoder: `[z_mean, z_log_var]` if
`variational` (for `aae.models.VAE`), else one code layer (for `aae.models.Autoencoder`). The
decoder mirrors it: a dense layer to the smallest feature map, `Conv2DTranspose` layers that
double the side back, and a last 3 x 3 convolution to one channel of pixel *logits*.

Both talk in flat vectors by default (`flat=True`): the encoder takes (batch, 784) and reshapes to
`input_shape` inside, the decoder hands back (batch, 784) logits. The model classes' losses sum
or average over the last axis, and `aae.metrics.iwae_log_likelihood`, `decode_batched` and the
plotting helpers all expect flat images, so flat I/O lets the convolutional models use every one
of them unchanged. `flat=False` gives image-shaped input and output (batch, 28, 28, 1) instead.
"""
from __future__ import annotations

import math

import keras
from keras import layers

from .checks import positive_int
from .models import encoder_heads

__all__ = ["conv_encoder", "conv_decoder"]


def _check(latent_dim, filters, input_shape):
    positive_int("latent_dim", latent_dim)
    if (isinstance(filters, (str, bytes)) or not hasattr(filters, "__len__") or len(filters) == 0
            or not all(isinstance(f, int) and not isinstance(f, bool) and f >= 1 for f in filters)):
        raise ValueError(f"filters must be a non-empty tuple of positive integers, one per strided "
                         f"convolution (e.g. (32, 64)), got {filters!r}.")
    if not (isinstance(input_shape, (tuple, list)) and len(input_shape) == 3
            and all(isinstance(d, int) and d >= 1 for d in input_shape)):
        raise ValueError(f"input_shape must be (height, width, channels), e.g. (28, 28, 1), "
                         f"got {input_shape!r}.")
    h, w, _ = input_shape
    scale = 2 ** len(filters)
    if h % scale or w % scale:
        raise ValueError(f"each of the {len(filters)} strided convolutions halves the image, so "
                         f"height and width must be divisible by {scale}; {input_shape} is not. "
                         f"Use fewer filters entries (28 x 28 takes at most 2).")
    return tuple(filters), tuple(input_shape)


def conv_encoder(latent_dim=2, filters=(32, 64), input_shape=(28, 28, 1), variational=True,
                 kernel_size=3, activation="relu", code_activation=None, flat=True,
                 kernel_regularizer=None, name="encoder"):
    """Strided-convolution encoder; returns `[z_mean, z_log_var]` if `variational`, else the code.

    One `Conv2D(f, kernel_size, strides=2, padding="same")` per entry of `filters`, then flatten
    and the dense heads (float32 under a mixed-precision policy, as in `mlp_encoder`).
    """
    filters, input_shape = _check(latent_dim, filters, input_shape)
    if flat:
        x = keras.Input((math.prod(input_shape),), name="x")
        h = layers.Reshape(input_shape, name="to_image")(x)
    else:
        x = h = keras.Input(input_shape, name="x")
    for i, f in enumerate(filters):
        h = layers.Conv2D(f, kernel_size, strides=2, padding="same", activation=activation,
                          kernel_regularizer=kernel_regularizer, name=f"conv{i + 1}")(h)
    h = layers.Flatten(name="flatten")(h)
    return encoder_heads(x, h, latent_dim, variational, code_activation, kernel_regularizer, name)


def conv_decoder(latent_dim=2, filters=(32, 64), input_shape=(28, 28, 1), variational=True,
                 kernel_size=3, activation="relu", flat=True, kernel_regularizer=None,
                 name="decoder"):
    """Transposed-convolution decoder from codes to pixel *logits* (apply a sigmoid for images).

    `filters` and `input_shape` are the encoder's: the decoder runs them in reverse, so
    `conv_decoder(filters=(32, 64))` mirrors `conv_encoder(filters=(32, 64))`. `variational`
    changes nothing here (a decoder is the same for both models); it is accepted so one dict of
    keywords can build both halves.
    """
    filters, input_shape = _check(latent_dim, filters, input_shape)
    scale = 2 ** len(filters)
    side = (input_shape[0] // scale, input_shape[1] // scale, filters[-1])
    z = keras.Input((latent_dim,), name="z")
    h = layers.Dense(math.prod(side), activation=activation, kernel_regularizer=kernel_regularizer,
                     name="project")(z)
    h = layers.Reshape(side, name="to_feature_map")(h)
    for i, f in enumerate(reversed(filters)):
        h = layers.Conv2DTranspose(f, kernel_size, strides=2, padding="same", activation=activation,
                                   kernel_regularizer=kernel_regularizer, name=f"deconv{i + 1}")(h)
    logits = layers.Conv2D(input_shape[-1], kernel_size, padding="same",
                           kernel_regularizer=kernel_regularizer, name="logits")(h)
    if flat:
        logits = layers.Flatten(name="flat_logits")(logits)
    # under a mixed-precision policy the convolutions compute in bfloat16; hand out float32
    logits = layers.Activation("linear", dtype="float32", name="logits_float32")(logits)
    return keras.Model(z, logits, name=name)
