"""aae.phases.ScannedSteps: on JAX, `steps_per_execution = k > 1` runs k training steps in one
jitted `jax.lax.scan`, with the same numbers and the same `fit` as Keras's own loop of single
steps. TensorFlow and PyTorch keep Keras's own train function (checked here too)."""
import keras
import numpy as np
import pytest

from aae.adversarial import adversarial_autoencoder
from aae.models import VAE, Autoencoder, mlp_decoder, mlp_encoder
from aae.phases import ScannedSteps
from aae.priors import GaussianPrior
from aae.runtime import ProgressBar

JAX = keras.backend.backend() == "jax"
needs_jax = pytest.mark.skipif(not JAX, reason="the scanned steps are JAX's (other backends: Keras's own loop)")

# 600 MNIST-like images, batch 64: 10 batches an epoch, the last one of 24 images. With k = 4 the
# groups are 4 + 4 + 2 (a full batch and the short one): the last runs as two single steps.
X = (np.random.default_rng(0).uniform(size=(600, 784)) < 0.13).astype("float32")
X_VAL = X[:100]
BATCH, STEPS = 64, 10


class _Counting:
    """Counts traces of `train_step` (the scan's body and the single steps alike)."""

    traces = 0

    def train_step(self, state, data):
        self.traces += 1
        return super().train_step(state, data)


class CountingAutoencoder(_Counting, Autoencoder):
    pass


class _Batches(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.begin, self.end, self.traces = [], [], []

    def on_train_batch_begin(self, batch, logs=None):
        self.begin.append(batch)

    def on_train_batch_end(self, batch, logs=None):
        self.end.append(batch)

    def on_epoch_end(self, epoch, logs=None):
        self.traces.append(self.model.traces)


def _vae(k, scan=True):
    keras.utils.set_random_seed(0)
    model = VAE(mlp_encoder(2, [32]), mlp_decoder(2, [32]), seed=0)
    model.scan_steps = scan
    model.compile(keras.optimizers.Adam(1e-3), steps_per_execution=k)
    return model


def _aae(k):
    keras.utils.set_random_seed(0)
    model = adversarial_autoencoder(GaussianPrior(8), (32,), (32,), seed=0)
    model.compile(steps_per_execution=k)
    return model


def _autoencoder(k, scan=True):
    keras.utils.set_random_seed(0)
    model = CountingAutoencoder(mlp_encoder(8, [32], variational=False), mlp_decoder(8, [32]))
    model.scan_steps = scan
    model.compile(keras.optimizers.Adam(1e-3), steps_per_execution=k)
    return model


def _same_history(a, b):
    assert set(a) == set(b)
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=2e-6, err_msg=name)


@needs_jax
@pytest.mark.parametrize("build", [_vae, _aae], ids=["vae", "adversarial_autoencoder"])
def test_scanned_steps_give_the_same_losses_as_single_steps(build):
    """From the same seed, k = 1 (Keras's single steps) and k = 5 (scanned) give the same
    losses, every epoch, to float32 rounding; the scan was traced once. (Batches of 60: ten
    whole ones, two scanned groups an epoch, so each side compiles one function only.)"""
    fit = dict(batch_size=60, epochs=2, verbose=0)
    # built and fitted one after the other: building seeds the global generators fit shuffles with
    single = build(1)
    h1 = single.fit(X, **fit).history
    scanned = build(5)
    h4 = scanned.fit(X, **fit).history
    assert not hasattr(single, "_scan_traces")  # k = 1 is Keras's own path
    assert scanned._scan_traces == 1  # the scan was taken, and compiled once
    _same_history(h1, h4)


@needs_jax
def test_remainder_group_trains_every_batch_without_recompiling():
    """10 batches an epoch in groups of 4: every batch is trained (the optimizer counts 10 updates
    an epoch), Keras's callbacks get Keras's batch numbers, and nothing is traced after epoch 1."""
    model, batches = _autoencoder(4), _Batches()
    model.fit(X, batch_size=BATCH, epochs=3, verbose=0, callbacks=[batches])
    assert int(model.optimizer.iterations) == 3 * STEPS
    assert model._scan_traces == 1
    # traced in epoch 1 (the scan's body, one single step per batch shape), never again
    assert batches.traces[0] > 0 and batches.traces == [batches.traces[0]] * 3
    assert batches.begin == [0, 4, 8] * 3 and batches.end == [3, 7, 11] * 3

    # Keras's own loop of single steps: the same callbacks, the same updates, the same weights
    keras_loop, theirs = _autoencoder(4, scan=False), _Batches()
    keras_loop.fit(X, batch_size=BATCH, epochs=3, verbose=0, callbacks=[theirs])
    assert (theirs.begin, theirs.end) == (batches.begin, batches.end)
    assert int(keras_loop.optimizer.iterations) == 3 * STEPS
    for ours, reference in zip(model.get_weights(), keras_loop.get_weights()):
        np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-6)


@needs_jax
def test_progress_bar_counts_and_validation_with_scanned_steps(capsys):
    """The bar counts the epoch's 10 steps (aae.runtime.ProgressBar caps Keras's overshoot of
    the last group as it does for Keras's own loop) and shows the validation losses."""
    model = _vae(4)
    history = model.fit(X, batch_size=BATCH, epochs=1, verbose=1, validation_data=(X_VAL,),
                        callbacks=[ProgressBar()]).history
    out = capsys.readouterr().out
    assert f"{STEPS}/{STEPS}" in out and f"{STEPS + 2}/{STEPS}" not in out
    assert "val_loss" in out and np.isfinite(history["val_loss"][0])
    assert model._scan_traces == 1


@needs_jax
def test_train_on_batch_and_unroll_option():
    """train_on_batch (one batch) takes the single step; `scan_unroll` is passed to the scan."""
    model = _vae(4)
    model.scan_unroll = 4
    logs = model.train_on_batch(X[:BATCH], return_dict=True)
    assert np.isfinite(logs["loss"]) and model._scan_traces == 0
    model.fit(X[:4 * BATCH], batch_size=BATCH, epochs=1, verbose=0, shuffle=False)
    assert model._scan_traces == 1 and int(model.optimizer.iterations) == 5


@pytest.mark.skipif(JAX, reason="checks the other backends")
def test_other_backends_keep_kerass_train_function():
    assert ScannedSteps.make_train_function is keras.Model.make_train_function
