"""The judge: a small CNN digit classifier that says what a decoded image shows (notebook 05)."""
from __future__ import annotations

import keras
import numpy as np
from keras import layers

from .checks import positive_int
from .models import batched

__all__ = ["digit_classifier", "train_classifier", "predict_proba"]


def digit_classifier(filters=(32, 64), dense_units=128, dropout=0.3, name="digit_classifier"):
    """CNN from images (n, 784) in [0, 1] to digit probabilities (n, 10) (softmax)."""
    for f in filters:
        positive_int("filters", f)
    positive_int("dense_units", dense_units)
    x = keras.Input((784,), name="x")
    h = layers.Reshape((28, 28, 1))(x)
    for i, f in enumerate(filters, start=1):
        h = layers.Conv2D(f, 3, padding="same", activation="relu", name=f"conv{i}")(h)
        h = layers.MaxPooling2D(name=f"pool{i}")(h)
    h = layers.Flatten()(h)
    h = layers.Dense(dense_units, activation="relu", name="hidden")(h)
    h = layers.Dropout(dropout)(h)
    probs = layers.Dense(10, activation="softmax", name="probs")(h)
    return keras.Model(x, probs, name=name)


def train_classifier(x_train, y_train, x_test=None, y_test=None, epochs=3, batch_size=128,
                     lr=2e-3, seed=None, verbose=0, callbacks=None, **builder_kwargs):
    """Build and train `digit_classifier`; returns (classifier, test accuracy or None).

    Adam with a cosine-decaying learning rate: 3 epochs reach about 99.2% on MNIST test
    (20-40 s per epoch on 2 CPU cores). x: (n, 784) or (n, 28, 28[, 1]) in [0, 1].
    `callbacks` go to `fit` (`[aae.runtime.EpochLog()]`: one line per epoch).
    """
    positive_int("epochs", epochs)
    positive_int("batch_size", batch_size)
    if seed is not None:
        keras.utils.set_random_seed(seed)
    x_train = np.asarray(x_train, "float32").reshape(len(x_train), -1)
    classifier = digit_classifier(**builder_kwargs)
    steps = epochs * int(np.ceil(len(x_train) / batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(lr, steps, alpha=0.02)
    classifier.compile(optimizer=keras.optimizers.Adam(schedule),
                       loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    classifier.fit(x_train, np.asarray(y_train), epochs=epochs, batch_size=batch_size,
                   verbose=verbose, callbacks=callbacks)
    accuracy = None
    if x_test is not None:
        probs = predict_proba(classifier, x_test)
        accuracy = float(np.mean(probs.argmax(1) == np.asarray(y_test)))
    return classifier, accuracy


def predict_proba(classifier, images, batch_size=4096):
    """Digit probabilities (m, 10) from a Keras model or any callable images -> (m, 10)."""
    images = np.asarray(images, "float32").reshape(len(images), -1)
    probs = batched(classifier, images, batch_size) if isinstance(classifier, keras.Model) \
        else classifier(images)
    probs = np.asarray(probs, "float64")  # also for bfloat16 outputs of mixed-precision models
    if probs.ndim != 2 or probs.shape != (len(images), 10):
        raise ValueError(f"the classifier must return digit probabilities of shape "
                         f"({len(images)}, 10), got {probs.shape}")
    if len(probs) and (probs.min() < -1e-6 or not np.allclose(probs.sum(1), 1.0, atol=1e-3)):
        raise ValueError("the classifier must return probabilities (rows in [0, 1] summing to "
                         "1, e.g. a softmax output), not logits")
    return probs
