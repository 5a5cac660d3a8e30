"""Priors for the adversarial autoencoder (notebook 04): samplers the codes are pushed towards.

Each prior has `sample(n, seed)` (NumPy, float32 (n, dim), for plots and generation) and
`sample_tensor(n, seed_generator)` (keras.random, for use inside a compiled `train_step`).
Priors with `n_classes` split their mass into one region per class; `labels=` then draws each
point from its label's region (the supervised AAE). `log_density(z)` gives log p(z) in nats where
it has a closed form (None otherwise), and `get_config()` / `prior_from_config()` carry a prior
through the JSON saved beside a trained model (`aae.saving`).
"""
from __future__ import annotations

import keras
import numpy as np
from keras import ops
from scipy.special import logsumexp

from .checks import non_negative_int, positive, positive_int

__all__ = ["GaussianPrior", "MixturePrior", "SwissRollPrior", "prior_from_config"]


def _check_n(n):
    return non_negative_int("n", n, "the number of samples")


class _Prior:
    """Shared plumbing: argument checks and the label handling of the class-structured priors."""

    dim = 2
    n_classes = None  # None: no per-class regions, so no supervised variant
    is_standard_normal = False  # True only for N(0, I) in 2-D: occupancy measures it exactly

    def log_density(self, z):
        """log p(z) in nats, (m,) for codes z (m, dim); None where there is no closed form."""
        return None

    def get_config(self):
        """The constructor's arguments, with the class name: JSON-ready."""
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "class")
        return f"{type(self).__name__}({args})"

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
        self.dim = positive_int("dim", dim)
        self.scale = positive("scale", scale, " It is the standard deviation of every coordinate.")
        self.lim = 2.6 * self.scale  # half-width of a square holding ~99% of each coordinate
        self.is_standard_normal = self.dim == 2 and self.scale == 1.0

    def get_config(self):
        return {"class": "GaussianPrior", "dim": self.dim, "scale": self.scale}

    def log_density(self, z):
        z = np.asarray(z, "float64")
        var = self.scale ** 2
        return -0.5 * (z ** 2).sum(-1) / var - 0.5 * self.dim * np.log(2 * np.pi * var)

    def sample(self, n, seed=None):
        """`n` draws, float32 (n, dim); `seed` is an int, None or a np.random.Generator."""
        rng = np.random.default_rng(seed)
        return (self.scale * rng.standard_normal((_check_n(n), self.dim))).astype("float32")

    def sample_tensor(self, n, seed_generator, labels=None):
        """In-graph draws (n, dim) from a keras.random.SeedGenerator; `labels` is ignored."""
        return keras.random.normal((n, self.dim), stddev=self.scale, seed=seed_generator)


class MixturePrior(_Prior):
    """`n_components` isotropic 2-D Gaussians (std `std`) centred on a circle of `radius`.

    Component k sits at angle 2*pi*k / n_components; with labels, digit k is drawn from component k.
    """

    def __init__(self, n_components=10, radius=4.0, std=0.5):
        self.n_classes = positive_int("n_components", n_components)
        self.radius = positive("radius", radius)
        self.std = positive("std", std, " It is the standard deviation of each component.")
        angles = 2 * np.pi * np.arange(self.n_classes) / self.n_classes
        self.means = (self.radius * np.stack([np.cos(angles), np.sin(angles)], 1)).astype("float32")
        self.lim = self.radius + 2.6 * self.std

    def get_config(self):
        return {"class": "MixturePrior", "n_components": self.n_classes, "radius": self.radius,
                "std": self.std}

    def log_density(self, z):
        """log p(z) of the equal-weight mixture, by log-sum-exp over its components."""
        var = self.std ** 2
        d2 = ((np.asarray(z, "float64")[:, None, :] - self.means[None].astype("float64")) ** 2).sum(-1)
        return logsumexp(-0.5 * d2 / var, axis=1) - np.log(self.n_classes * 2 * np.pi * var)

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


class SwissRollPrior(_Prior):
    """2-D Swiss roll: a spiral of `turns` turns out to `radius`, blurred by Gaussian `noise`.

    Position s = sqrt(u), u ~ U(0, 1), gives roughly even density along the curve; the roll is
    cut into `n_segments` pieces of equal mass, and with labels digit k lands on piece k.
    """

    def __init__(self, radius=4.0, turns=1.5, noise=0.15, n_segments=10):
        self.radius = positive("radius", radius)
        self.turns = positive("turns", turns)
        self.noise = positive("noise", noise, " Use a small value like 0.1 for a thin roll.")
        self.n_classes = positive_int("n_segments", n_segments)
        self.lim = self.radius + 2.6 * self.noise

    def get_config(self):
        return {"class": "SwissRollPrior", "radius": self.radius, "turns": self.turns,
                "noise": self.noise, "n_segments": self.n_classes}

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


PRIORS = {cls.__name__: cls for cls in (GaussianPrior, MixturePrior, SwissRollPrior)}


def prior_from_config(config):
    """The prior a `get_config()` dict describes (e.g. read back from a saved model's JSON)."""
    config = dict(config)
    name = config.pop("class", None)
    if name not in PRIORS:
        raise ValueError(f"unknown prior {name!r} in {config}; known: {sorted(PRIORS)}")
    return PRIORS[name](**config)
