"""aae.conv builders with the project's VAE and Autoencoder: the loss on a fixed input against
the dense formula, flat and image-shaped I/O agreeing, and a few training steps helping."""
import numpy as np
import pytest
import keras

from aae.conv import conv_decoder, conv_encoder
from aae.data import load_mnist
from aae.metrics import iwae_log_likelihood
from aae.models import VAE, Autoencoder


@pytest.fixture(scope="module")
def images(mnist_dir):
    (x, _), (xt, _) = load_mnist(mnist_dir, train_size=512, test_size=16)
    return x, xt


def _np(t):
    return keras.ops.convert_to_numpy(t).astype("float64")


def test_conv_vae_loss_is_the_dense_formula(images):
    _, x = images
    keras.utils.set_random_seed(0)
    vae = VAE(conv_encoder(latent_dim=2, filters=(8, 16)), conv_decoder(latent_dim=2, filters=(8, 16)), seed=0)
    z_mean, z_log_var = vae.encoder(x)
    logits = vae.decoder(z_mean)
    terms = vae.loss_terms(x, {"z_mean": z_mean, "z_log_var": z_log_var, "logits": logits})
    m, lv, l, xx = _np(z_mean), _np(z_log_var), _np(logits), x.astype("float64")
    # Bernoulli log-likelihood summed over all 784 pixels of each image, then the batch mean
    bce = np.mean(np.sum(np.logaddexp(0, l) - xx * l, axis=1))
    kl = np.mean(-0.5 * np.sum(1 + lv - m ** 2 - np.exp(lv), axis=1))
    assert l.shape == (16, 784)
    assert float(_np(terms["reconstruction_loss"])) == pytest.approx(bce, rel=1e-5)
    assert float(_np(terms["kl_loss"])) == pytest.approx(kl, rel=1e-4, abs=1e-6)
    assert float(_np(terms["loss"])) == pytest.approx(bce + kl, rel=1e-5)
    # an untrained decoder (logits near 0) costs about log 2 nats per pixel
    assert 0.5 * 784 * np.log(2) < bce < 1.5 * 784 * np.log(2)
    # and the IWAE estimate works on it too: finite, and above the negative ELBO's bound on average
    log_px = iwae_log_likelihood(vae.encoder, vae.decoder, x, k=50, seed=0)
    assert np.all(np.isfinite(log_px)) and -log_px.mean() < bce + kl + 5


def test_flat_and_image_io_compute_the_same(images):
    _, x = images
    keras.utils.set_random_seed(1)
    flat_e, flat_d = conv_encoder(latent_dim=3, filters=(4, 8), variational=False), conv_decoder(latent_dim=3, filters=(4, 8))
    img_e = conv_encoder(latent_dim=3, filters=(4, 8), variational=False, flat=False)
    img_d = conv_decoder(latent_dim=3, filters=(4, 8), flat=False)
    img_e.set_weights(flat_e.get_weights())
    img_d.set_weights(flat_d.get_weights())
    code = _np(flat_e(x))
    np.testing.assert_allclose(_np(img_e(x.reshape(-1, 28, 28, 1))), code, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_np(img_d(code)).reshape(len(x), -1), _np(flat_d(code)), rtol=1e-5, atol=1e-5)


def test_conv_autoencoder_reconstructions_improve(images):
    x, _ = images
    keras.utils.set_random_seed(0)
    ae = Autoencoder(conv_encoder(latent_dim=32, filters=(8, 16), variational=False, code_activation="relu"),
                     conv_decoder(latent_dim=32, filters=(8, 16)))
    ae.compile(optimizer=keras.optimizers.Adam(3e-3))
    before = ae.evaluate(x, batch_size=256, verbose=0, return_dict=True)["reconstruction_loss"]
    ae.fit(x, epochs=6, batch_size=64, verbose=0)
    after = ae.evaluate(x, batch_size=256, verbose=0, return_dict=True)["reconstruction_loss"]
    assert before == pytest.approx(np.log(2), abs=0.1)  # logits near 0 at the start
    assert after < 0.6 * before, (before, after)
    probs = ae.decode(ae.encode(x[:4]))
    assert probs.shape == (4, 784) and 0 <= probs.min() and probs.max() <= 1


@pytest.mark.parametrize("kwargs, message", [
    (dict(filters=()), "filters must be a non-empty tuple of positive integers"),
    (dict(filters=(16, 0)), "filters must be a non-empty tuple"),
    (dict(filters=(8, 8, 8)), "divisible by 8; .*28, 28, 1.* is not"),
    (dict(input_shape=(28, 28)), r"input_shape must be \(height, width, channels\)"),
    (dict(latent_dim=0), "latent_dim must be an integer >= 1"),
])
def test_bad_arguments(kwargs, message):
    for build in (conv_encoder, conv_decoder):
        with pytest.raises(ValueError, match=message):
            build(**kwargs)
