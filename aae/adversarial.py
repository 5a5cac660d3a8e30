"""Adversarial autoencoder (Makhzani et al. 2015), used by notebook 04.

An autoencoder whose codes are pushed towards a chosen prior by a discriminator that tells
prior samples from codes. Every batch runs the paper's two phases inside one compiled
`train_step`: (1) reconstruction, updating encoder + decoder; (2) regularisation, first the
discriminator (prior samples = 1, codes = 0), then the encoder as generator, to fool it.
The phases are written once with `keras.ops`; `aae.phases` runs them on any backend.
"""
from __future__ import annotations

import keras
from keras import layers, ops

from .checks import one_of, positive_int
from .layers import Sampling
from .losses import bce_sum_from_logits
from .models import (decode_batched, dense_stack, encode_batched, encoder_heads, mlp_decoder,
                     mlp_encoder)
from .phases import PhasedModel
from .priors import GaussianPrior

__all__ = ["AdversarialAutoencoder", "adversarial_autoencoder", "aae_discriminator", "batch_norm_encoder",
           "standardised_codes", "POSTERIORS"]

POSTERIORS = ("deterministic", "gaussian")


def _check_posterior(posterior):
    return one_of("posterior", posterior, POSTERIORS,
                  " 'deterministic': code = encoder output; 'gaussian': code sampled from "
                  "N(z_mean, exp(z_log_var)) by reparameterisation.")


def aae_discriminator(latent_dim=8, hidden=(512, 256), n_classes=0, dropout=0.0, name="discriminator"):
    """Dense LeakyReLU discriminator: code (+ one-hot label if `n_classes`) -> logit (n, 1).

    A positive logit means "drawn from the prior". `dropout` > 0: dropout of that rate after
    each hidden layer, in training calls (the discriminator and generator phases).
    """
    width = positive_int("latent_dim", latent_dim) + int(n_classes or 0)
    z = keras.Input((width,), name="code_and_label" if n_classes else "code")
    logit = layers.Dense(1, dtype="float32", name="logit")(
        dense_stack(z, hidden, "leaky_relu", dropout=dropout))
    return keras.Model(z, logit, name=name)


def batch_norm_encoder(latent_dim, hidden, original_dim=784, variational=False, dropout=0.0,
                       name="encoder"):
    """Dense encoder as `mlp_encoder` with activation LeakyReLU, but each hidden layer is
    Dense -> BatchNormalization -> LeakyReLU (-> Dropout): the paper's clustering models
    normalise the encoder's layers (aae-paper-notes). In training calls the batch's statistics
    are used and the moving averages advance; otherwise the moving averages are used."""
    positive_int("latent_dim", latent_dim)
    x = keras.Input((original_dim,), name="x")
    h = x
    for i, units in enumerate(hidden):
        h = layers.Dense(positive_int("hidden units", units), name=f"hidden{i + 1}")(h)
        h = layers.BatchNormalization(name=f"hidden{i + 1}_batch_norm")(h)
        h = layers.LeakyReLU(negative_slope=0.2, name=f"hidden{i + 1}_leaky_relu")(h)
        if dropout:
            h = layers.Dropout(dropout, name=f"hidden{i + 1}_dropout")(h)
    return encoder_heads(x, h, latent_dim, variational, name=name)


def standardised_codes(encoder, prior):
    """`encoder` (one output, the code) followed by BatchNormalization(center=False, scale=False)
    and a fixed rescaling by the prior's std: in training calls every axis of a batch of codes is
    standardised to mean 0 and the prior's std, so the reconstruction phase cannot spread the codes
    past the prior's scale and the generator only has to shape them; in inference calls the moving
    averages are used. Only for a prior with mean 0 and the same std on every axis
    (`GaussianPrior(dim, scale)`)."""
    if len(encoder.outputs) != 1:
        raise ValueError("code_batch_norm needs the deterministic posterior (an encoder with one output).")
    if not isinstance(prior, GaussianPrior):
        raise ValueError(f"code_batch_norm standardises the codes to mean 0 and the prior's std on every "
                         f"axis, so it needs a GaussianPrior, got {prior!r}.")
    code = layers.BatchNormalization(center=False, scale=False, dtype="float32",
                                     name="code_batch_norm")(encoder.outputs[0])
    if prior.scale != 1.0:
        code = layers.Rescaling(prior.scale, dtype="float32", name="code_prior_scale")(code)
    return keras.Model(encoder.input, code, name=encoder.name)


def adversarial_autoencoder(prior, hidden=(512, 512), d_hidden=(512, 256), posterior="deterministic",
                            supervised=False, seed=None, original_dim=784, dropout=0.0,
                            encoder_batch_norm=False, code_batch_norm=False, d_input_noise=0.0,
                            d_dropout=0.0):
    """The adversarial autoencoder for `prior` (its `dim` is the code size): dense LeakyReLU
    encoder 784-hidden-code and decoder code-hidden-784 (pixel logits), discriminator
    code(-label)-d_hidden-1. `dropout` > 0: dropout of that rate after each hidden layer of the
    encoder and decoder while training; `d_dropout` the same for the discriminator's hidden
    layers (the published Parzen reproduction drops out in all three networks).
    `encoder_batch_norm`: batch normalisation before each hidden activation of the encoder
    (`batch_norm_encoder`). `code_batch_norm`: the
    deterministic code is batch-normalised without scale or offset, so each axis of a batch of
    codes has mean 0 and the Gaussian prior's std (`standardised_codes`).
    `d_input_noise` > 0: the discriminator sees codes and prior samples with Gaussian noise of that std added (training
    only; see `AdversarialAutoencoder`). Compile it with one optimizer per
    phase (`compile`)."""
    latent_dim = prior.dim
    n_classes = prior.n_classes if supervised else 0
    build_encoder = batch_norm_encoder if encoder_batch_norm else (
        lambda *a, **k: mlp_encoder(*a, activation="leaky_relu", **k))
    encoder = build_encoder(latent_dim, hidden, original_dim,
                            variational=_check_posterior(posterior) == "gaussian", dropout=dropout)
    if code_batch_norm:
        encoder = standardised_codes(encoder, prior)
    decoder = mlp_decoder(latent_dim, hidden, original_dim, activation="leaky_relu", dropout=dropout)
    return AdversarialAutoencoder(encoder, decoder,
                                  aae_discriminator(latent_dim, d_hidden, n_classes=n_classes or 0,
                                                    dropout=d_dropout),
                                  prior, posterior=posterior, supervised=supervised, seed=seed,
                                  d_input_noise=d_input_noise)


class AdversarialAutoencoder(PhasedModel):
    """Adversarial autoencoder: reconstruction phase, then discriminator and generator phases.

    encoder: x (n, 784) -> code, or [z_mean, z_log_var] when `posterior="gaussian"`.
    decoder: code -> pixel logits. discriminator: code (concatenated with the one-hot label when
    `supervised`) -> logit. `prior`: an `aae.priors` object with `dim == latent_dim`.
    Supervised: fit(x, y); each digit's prior samples come from its own region of the prior.
    `d_input_noise` > 0 adds Gaussian noise of that std to the codes and prior samples the
    discriminator sees in training (not to the one-hot label): it then judges the codes'
    distribution smoothed at that scale, so it stops pushing on gaps between digits narrower than
    the noise (results/tuning-2d-aae/).
    Reconstruction loss is BCE *summed* over pixels (nats per image, comparable with the VAE);
    each phase has its own Adam optimizer, so the loss scales of the phases do not interact.
    """

    tracked = ("reconstruction_loss", "discriminator_loss", "discriminator_accuracy", "generator_loss")

    def __init__(self, encoder, decoder, discriminator, prior, posterior="deterministic",
                 supervised=False, seed=None, d_input_noise=0.0, **kwargs):
        super().__init__(**kwargs)
        self.posterior = _check_posterior(posterior)
        n_out = len(encoder.outputs)
        if n_out != (2 if posterior == "gaussian" else 1):
            want = ("two outputs [z_mean, z_log_var]" if posterior == "gaussian" else "one output")
            raise ValueError(f"posterior={posterior!r} needs an encoder with {want}, but it has "
                             f"{n_out}. Build it with mlp_encoder(..., variational={posterior == 'gaussian'}).")
        latent_dim = encoder.outputs[0].shape[-1]
        if prior.dim != latent_dim:
            raise ValueError(f"prior has dim {prior.dim} but the encoder's codes have {latent_dim} "
                             f"dims; build the prior with dim={latent_dim} or the encoder with "
                             f"latent_dim={prior.dim}.")
        if decoder.inputs[0].shape[-1] != latent_dim:
            raise ValueError(f"decoder takes codes of {decoder.inputs[0].shape[-1]} dims but the "
                             f"encoder makes {latent_dim}; use the same latent_dim for both.")
        if supervised and not prior.n_classes:
            raise ValueError(f"supervised=True needs a prior with one region per class "
                             f"(MixturePrior or SwissRollPrior), got {prior!r}.")
        self.n_classes = prior.n_classes if supervised else 0
        d_width = discriminator.inputs[0].shape[-1]
        if d_width != latent_dim + self.n_classes:
            raise ValueError(f"discriminator takes {d_width} inputs but needs latent_dim + "
                             f"n_classes = {latent_dim} + {self.n_classes}; build it with "
                             f"aae_discriminator({latent_dim}, n_classes={self.n_classes}).")
        self.encoder, self.decoder, self.discriminator = encoder, decoder, discriminator
        self.prior, self.supervised, self.latent_dim = prior, bool(supervised), latent_dim
        self.seed = seed
        if not (isinstance(d_input_noise, (int, float)) and not isinstance(d_input_noise, bool)
                and d_input_noise >= 0):
            raise ValueError(f"d_input_noise is the std of the noise added to the discriminator's "
                             f"code inputs, a number >= 0 (0: none), got {d_input_noise!r}.")
        self.d_input_noise = float(d_input_noise)
        self.seed_generator = keras.random.SeedGenerator(seed)
        # A different seed for the posterior noise, so it is not the prior's noise stream again.
        self.sampling = Sampling(seed=None if seed is None else seed + 1, name="sampling")
        self.built = True  # the three networks arrive built; nothing is created on first call

    def compile(self, ae_optimizer=None, d_optimizer=None, g_optimizer=None, **kwargs):
        """One optimizer per phase; None gives Adam(2e-3) for the autoencoder, Adam(1e-3) for
        discriminator and generator (notebook 04's settings for its 8-D model; its 2-D models use
        1e-3 for the autoencoder). kwargs go to keras.Model.compile.

        A generator rate well below the autoencoder's lets reconstruction win: the codes then
        drift off the prior (both phases move the encoder by about their learning rate per step).
        On the 8-D MNIST model, beta_1 = 0.9 gave better Parzen scores than the GAN habit of 0.5.
        """
        self.compile_phases({"reconstruction": ae_optimizer or keras.optimizers.Adam(2e-3),
                             "discriminator": d_optimizer or keras.optimizers.Adam(1e-3),
                             "generator": g_optimizer or keras.optimizers.Adam(1e-3)}, **kwargs)

    @property
    def ae_optimizer(self):
        return self.optimizer["reconstruction"]

    @property
    def d_optimizer(self):
        return self.optimizer["discriminator"]

    @property
    def g_optimizer(self):
        return self.optimizer["generator"]

    def phase_variables(self):
        return {"reconstruction": self.encoder.trainable_weights + self.decoder.trainable_weights,
                "discriminator": self.discriminator.trainable_weights,
                "generator": self.encoder.trainable_weights}

    def _code(self, x, training):
        """Code used for training: the encoder output, or a reparameterised posterior draw."""
        out = self.encoder(x, training=training)
        return self.sampling(out) if self.posterior == "gaussian" else out

    def _noisy(self, z, training):
        """`z` plus N(0, d_input_noise^2) noise in training calls (the discriminator's view)."""
        if not (training and self.d_input_noise):
            return z
        return z + self.d_input_noise * keras.random.normal(ops.shape(z), seed=self.seed_generator)

    def _with_label(self, z, onehot):
        return z if onehot is None else ops.concatenate([z, onehot], axis=-1)

    def phases(self, x, y, step, training):
        """The three updates of one batch (`step` runs each); returns the four tracked values."""
        onehot = None
        if self.supervised:
            if y is None:
                raise ValueError("supervised AAE needs labels: call fit(x, y) with y the digits.")
            y = ops.cast(ops.reshape(y, (-1,)), "int32")
            onehot = ops.one_hot(y, self.n_classes)
        n = ops.shape(x)[0]

        # (1) Reconstruction phase: encoder + decoder minimise BCE (nats per image).
        def reconstruction():
            z = self._code(x, training)
            return ops.mean(bce_sum_from_logits(x, self.decoder(z, training=training))), z

        rec, z = step("reconstruction", reconstruction)

        # (2a) Discriminator: prior samples are "real" (1), codes "fake" (0). The codes from
        # phase 1 are reused (one encoder pass fewer); both halves go through D in one call.
        z_prior = self.prior.sample_tensor(n, self.seed_generator, labels=y if self.supervised else None)
        d_in = ops.concatenate([self._with_label(self._noisy(z_prior, training), onehot),
                                self._with_label(self._noisy(ops.stop_gradient(z), training), onehot)],
                               axis=0)

        def discriminator():
            logits = self.discriminator(d_in, training=training)
            real, fake = logits[:n], logits[n:]
            # BCE from logits averaged over both halves: log 2 = 0.693 at chance.
            d_loss = 0.5 * (ops.mean(ops.softplus(-real)) + ops.mean(ops.softplus(fake)))
            accuracy = 0.5 * (ops.mean(ops.cast(real > 0, "float32"))
                              + ops.mean(ops.cast(fake < 0, "float32")))
            return d_loss, accuracy

        d_loss, d_acc = step("discriminator", discriminator)

        # (2b) Generator: the encoder makes D call its codes "real" (non-saturating loss).
        def generator():
            z = self._code(x, training)
            logits = self.discriminator(self._with_label(self._noisy(z, training), onehot),
                                        training=training)
            return ops.mean(ops.softplus(-logits)), None

        g_loss, _ = step("generator", generator)
        return {"reconstruction_loss": rec, "discriminator_loss": d_loss,
                "discriminator_accuracy": d_acc, "generator_loss": g_loss}

    def call(self, x, training=False):
        """Pixel logits of the reconstructions (the posterior mean for a Gaussian posterior)."""
        return self.decoder(self._mean_code(x, training), training=training)

    def _mean_code(self, x, training=False):
        out = self.encoder(x, training=training)
        return out[0] if self.posterior == "gaussian" else out

    def code_encoder(self):
        """Keras model x (n, 784) -> code (n, latent_dim) (the posterior mean if Gaussian)."""
        if self.posterior == "deterministic":
            return self.encoder
        return keras.Model(self.encoder.inputs, self.encoder.outputs[0], name="code_encoder")

    def encode(self, x, batch_size=4096):
        """Codes (n, latent_dim) of images x (n, 784); posterior means for a Gaussian posterior."""
        return encode_batched(self.encoder, x, batch_size)

    def decode(self, z):
        """Pixel probabilities (n, 784) for codes z (n, latent_dim)."""
        return decode_batched(self.decoder, z)

    def generate(self, n, seed=None, labels=None):
        """Pixel probabilities (n, 784) decoded from `n` prior samples (`labels` for class priors)."""
        kwargs = {} if labels is None else {"labels": labels}
        return self.decode(self.prior.sample(n, seed, **kwargs))
