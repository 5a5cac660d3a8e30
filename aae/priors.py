"""Priors for the adversarial autoencoder (notebook 04): samplers the codes are pushed towards.

Each prior has `sample(n, seed)` (NumPy, float32 (n, dim), for plots and generation) and
`sample_tensor(n, seed_generator)` (keras.random, for use inside a compiled `train_step`).
Priors with `n_classes` split their mass into one region per class; `labels=` then draws each
point from its label's region (the supervised AAE).
"""
from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from .losses import check_positive_int

__all__ = ["GaussianPrior", "MixturePrior", "SwissRollPrior"]


def _positive(name, value, hint=""):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}.{hint}")
    return float(value)


def _check_n(n):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n (the number of samples) must be an integer >= 0, got {n!r}.")
    return int(n)


class _Prior:
    """Shared plumbing: argument checks and the label handling of the class-structured priors."""

    dim = 2
    n_classes = None  # None: no per-class regions, so no supervised variant

    def _labels(self, n, rng, labels):
        """Validated int labels of length n; uniform random ones when `labels` is None."""
        if labels is None:
            return rng.integers(0, self.n_classes, size=n)
        labels = np.asarray(labels)
        if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be an integer array of shape ({n},), got shape "
                             f"{labels.shape} and dtype {labels.dtype}.")
        if n and (labels.min() < 0 or labels.max() >= self.n_classes):
            raise ValueError(f"labels must lie in 0..{self.n_classes - 1} (one per region of "
                             f"{type(self).__name__}), got {labels.min()}..{labels.max()}.")
        return labels

    def _labels_tensor(self, n, seed_generator, labels):
        if labels is None:
            return keras.random.randint((n,), 0, self.n_classes, seed=seed_generator)
        return ops.cast(ops.reshape(labels, (-1,)), "int32")


class GaussianPrior(_Prior):
    """Isotropic Gaussian N(0, scale^2 I) in `dim` dimensions."""

    def __init__(self, dim=2, scale=1.0):
        self.dim = check_positive_int("dim", dim)
        self.scale = _positive("scale", scale, " It is the standard deviation of every coordinate.")
        self.lim = 2.6 * self.scale  # half-width of a square holding ~99% of each coordinate

    def sample(self, n, seed=None):
        """`n` draws, float32 (n, dim); `seed` is an int, None or a np.random.Generator."""
        rng = np.random.default_rng(seed)
        return (self.scale * rng.standard_normal((_check_n(n), self.dim))).astype("float32")

    def sample_tensor(self, n, seed_generator, labels=None):
        """In-graph draws (n, dim) from a keras.random.SeedGenerator; `labels` is ignored."""
        return keras.random.normal((n, self.dim), stddev=self.scale, seed=seed_generator)

    def __repr__(self):
        return f"GaussianPrior(dim={self.dim}, scale={self.scale})"


class MixturePrior(_Prior):
    """`n_components` isotropic 2-D Gaussians (std `std`) centred on a circle of `radius`.

    Component k sits at angle 2*pi*k / n_components; with labels, digit k is drawn from component k.
    """

    def __init__(self, n_components=10, radius=4.0, std=0.5):
        self.n_classes = check_positive_int("n_components", n_components)
        self.radius = _positive("radius", radius)
        self.std = _positive("std", std, " It is the standard deviation of each component.")
        angles = 2 * np.pi * np.arange(self.n_classes) / self.n_classes
        self.means = (self.radius * np.stack([np.cos(angles), np.sin(angles)], 1)).astype("float32")
        self.lim = self.radius + 2.6 * self.std

    def sample(self, n, seed=None, labels=None, return_labels=False):
        """`n` draws, float32 (n, 2) (and the components, int (n,), with `return_labels`).

        `labels`: optional int array (n,) choosing each draw's component.
        """
        rng = np.random.default_rng(seed)
        labels = self._labels(_check_n(n), rng, labels)
        z = (self.means[labels] + self.std * rng.standard_normal((n, 2))).astype("float32")
        return (z, labels) if return_labels else z

    def sample_tensor(self, n, seed_generator, labels=None):
        """In-graph draws (n, 2); `labels` (n,) int tensor picks components, else uniform."""
        k = self._labels_tensor(n, seed_generator, labels)
        means = ops.take(ops.convert_to_tensor(self.means), k, axis=0)
        return means + keras.random.normal((n, 2), stddev=self.std, seed=seed_generator)

    def __repr__(self):
        return f"MixturePrior(n_components={self.n_classes}, radius={self.radius}, std={self.std})"


class SwissRollPrior(_Prior):
    """2-D Swiss roll: a spiral of `turns` turns out to `radius`, blurred by Gaussian `noise`.

    Position s = sqrt(u), u ~ U(0, 1), gives roughly even density along the curve; the roll is
    cut into `n_segments` pieces of equal mass, and with labels digit k lands on piece k.
    """

    def __init__(self, radius=4.0, turns=1.5, noise=0.15, n_segments=10):
        self.radius = _positive("radius", radius)
        self.turns = _positive("turns", turns)
        self.noise = _positive("noise", noise, " Use a small value like 0.1 for a thin roll.")
        self.n_classes = check_positive_int("n_segments", n_segments)
        self.lim = self.radius + 2.6 * self.noise

    def _curve(self, u, eps, xp):
        s = xp.sqrt(u)
        theta = 2 * np.pi * self.turns * s
        return xp.stack([self.radius * s * xp.cos(theta), self.radius * s * xp.sin(theta)], 1) \
            + self.noise * eps

    def sample(self, n, seed=None, labels=None, return_labels=False):
        """`n` draws, float32 (n, 2) (and the segments, int (n,), with `return_labels`)."""
        rng = np.random.default_rng(seed)
        n = _check_n(n)
        segment = self._labels(n, rng, labels)
        u = (segment + rng.uniform(size=n)) / self.n_classes  # uniform within the segment
        z = self._curve(u, rng.standard_normal((n, 2)), np).astype("float32")
        return (z, segment) if return_labels else z

    def sample_tensor(self, n, seed_generator, labels=None):
        """In-graph draws (n, 2); `labels` (n,) int tensor picks segments, else uniform."""
        segment = ops.cast(self._labels_tensor(n, seed_generator, labels), "float32")
        u = (segment + keras.random.uniform((n,), seed=seed_generator)) / self.n_classes
        return self._curve(u, keras.random.normal((n, 2), seed=seed_generator), ops)

    def __repr__(self):
        return (f"SwissRollPrior(radius={self.radius}, turns={self.turns}, noise={self.noise}, "
                f"n_segments={self.n_classes})")
