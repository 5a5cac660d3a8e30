"""How much of a 2-D latent space each digit occupies (notebook 05_latent_occupancy).

A small CNN judges what every point of a dense latent grid decodes to; from that labelled
grid we measure, per digit, the share of the prior's probability mass, the share of the area
inside the prior's 95% region, and how many encoded test digits fall in their own region.
Grid labels are 0..9 for digits and `UNCLEAR` (= 10) where the judge is not confident.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import matplotlib.pyplot as plt
import numpy as np
from keras import layers, ops
from matplotlib.colors import ListedColormap
from matplotlib.patches import Circle, Patch
from scipy.special import logsumexp
from scipy.stats import chi2, entropy, norm

from . import layers as _aae_layers  # noqa: F401  (registers custom layers for load_model)
from .losses import check_positive_int
from .models import decode_batched
from .plotting import DIGIT_COLORS

__all__ = ["UNCLEAR", "UNCLEAR_COLOR", "MODEL_SOURCES", "digit_classifier", "train_classifier",
           "OccupancyGrid", "classify_grid", "encode", "load_codec", "is_standard_normal",
           "prior_draws", "covering_lim", "prior_log_density", "prior_region",
           "prior_mass_shares", "prior_coverage", "normal_region", "density_region",
           "area_shares", "sweep_shares", "own_region_shares", "balance", "occupancy_summary",
           "occupancy_map", "occupancy_bars", "shares_figure"]

UNCLEAR = 10              # grid label of cells whose decoded image the judge is unsure about
UNCLEAR_COLOR = "0.88"    # light grey, hatched in maps: tab10 gives digit 7 a mid grey
SHARE_NAMES = [str(d) for d in range(10)] + ["unclear"]

# Which notebook writes `<results_dir>/models/<model>_{encoder,decoder}.keras`.
MODEL_SOURCES = {
    "vae": "notebooks/01_variational_autoencoder.ipynb",
    "aae_gaussian": "notebook 04, the adversarial autoencoder (its Gaussian-prior model)",
    "aae_supervised": "notebook 04, the adversarial autoencoder (its supervised mixture-prior model)",
}


# --- the judge: a small CNN digit classifier ----------------------------------------------

def digit_classifier(filters=(32, 64), dense_units=128, dropout=0.3, name="digit_classifier"):
    """CNN from images (n, 784) in [0, 1] to digit probabilities (n, 10) (softmax)."""
    for f in filters:
        check_positive_int("filters", f)
    check_positive_int("dense_units", dense_units)
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
                     lr=2e-3, seed=None, verbose=0, **builder_kwargs):
    """Build and train `digit_classifier`; returns (classifier, test accuracy or None).

    Adam with a cosine-decaying learning rate: 3 epochs reach about 99.2% on MNIST test
    (20-40 s per epoch on 2 CPU cores). x: (n, 784) or (n, 28, 28[, 1]) in [0, 1].
    """
    check_positive_int("epochs", epochs)
    check_positive_int("batch_size", batch_size)
    if seed is not None:
        keras.utils.set_random_seed(seed)
    x_train = np.asarray(x_train, "float32").reshape(len(x_train), -1)
    classifier = digit_classifier(**builder_kwargs)
    steps = epochs * int(np.ceil(len(x_train) / batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(lr, steps, alpha=0.02)
    classifier.compile(optimizer=keras.optimizers.Adam(schedule),
                       loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    classifier.fit(x_train, np.asarray(y_train), epochs=epochs, batch_size=batch_size,
                   verbose=verbose)
    accuracy = None
    if x_test is not None:
        probs = _predict_proba(classifier, np.asarray(x_test, "float32").reshape(len(x_test), -1))
        accuracy = float(np.mean(probs.argmax(1) == np.asarray(y_test)))
    return classifier, accuracy


def _predict_proba(classifier, images, batch_size=4096):
    """Digit probabilities (m, 10) from a Keras model or any callable images -> (m, 10)."""
    if isinstance(classifier, keras.Model):
        out = [ops.convert_to_numpy(classifier(images[i:i + batch_size], training=False))
               for i in range(0, len(images), batch_size)]
        probs = np.concatenate(out) if out else np.zeros((0, 10))
    else:
        probs = classifier(images)
    probs = np.asarray(probs, "float64")  # also for bfloat16 outputs of mixed-precision models
    if probs.ndim != 2 or probs.shape != (len(images), 10):
        raise ValueError(f"the classifier must return digit probabilities of shape "
                         f"({len(images)}, 10), got {probs.shape}")
    if len(probs) and (probs.min() < -1e-6 or not np.allclose(probs.sum(1), 1.0, atol=1e-3)):
        raise ValueError("the classifier must return probabilities (rows in [0, 1] summing to "
                         "1, e.g. a softmax output), not logits")
    return probs


# --- the labelled latent grid -----------------------------------------------------------

@dataclass
class OccupancyGrid:
    """A dense n x n latent grid labelled by the judge.

    `labels` (n, n) int: 0..9 or UNCLEAR; `predicted` (n, n): the judge's top digit whatever
    its confidence; `confidence` (n, n): its probability. Row-major like
    `aae.plotting.latent_grid`: row 0 is the largest z_2 (xs increasing, ys decreasing);
    each value sits at the centre of a cell of size dx x dy.
    """

    labels: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray
    xs: np.ndarray
    ys: np.ndarray
    threshold: float

    @property
    def n(self):
        return len(self.xs)

    @property
    def dx(self):
        return float(self.xs[1] - self.xs[0])

    @property
    def dy(self):
        return float(self.ys[0] - self.ys[1])

    @property
    def codes(self):
        """Cell centres (n*n, 2), in the order of `labels.ravel()`."""
        return np.stack(np.meshgrid(self.xs, self.ys), axis=-1).reshape(-1, 2)

    @property
    def extent(self):
        """(left, right, bottom, top) of the cell edges, for `imshow(..., extent=)`."""
        return (self.xs[0] - self.dx / 2, self.xs[-1] + self.dx / 2,
                self.ys[-1] - self.dy / 2, self.ys[0] + self.dy / 2)

    def inside(self, z):
        """Boolean (m,): which codes z (m, 2) lie within the grid's outer cell edges."""
        z = np.asarray(z, "float64")
        left, right, bottom, top = self.extent
        return (z[:, 0] >= left) & (z[:, 0] <= right) & (z[:, 1] >= bottom) & (z[:, 1] <= top)

    def cell_index(self, z):
        """Flat index (m,) of the nearest cell to each code z (m, 2); outside codes clip to the edge."""
        z = np.asarray(z, "float64").reshape(-1, 2)
        col = np.clip(np.rint((z[:, 0] - self.xs[0]) / self.dx), 0, self.n - 1).astype(int)
        row = np.clip(np.rint((self.ys[0] - z[:, 1]) / self.dy), 0, self.n - 1).astype(int)
        return row * self.n + col

    def label_at(self, z):
        """Grid label (m,) of the nearest cell to each code z (m, 2)."""
        return self.labels.ravel()[self.cell_index(z)]

    def with_threshold(self, threshold):
        """The same grid relabelled with another confidence threshold (no decoding needed)."""
        threshold = _check_threshold(threshold)
        labels = np.where(self.confidence >= threshold, self.predicted, UNCLEAR)
        return OccupancyGrid(labels, self.predicted, self.confidence, self.xs, self.ys, threshold)


def _check_threshold(threshold):
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating)) \
            or not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold is the judge's minimum confidence and must lie strictly "
                         f"between 0 and 1, got {threshold!r}")
    return float(threshold)


def _axis_limits(lim):
    if np.ndim(lim) == 0:
        lim = float(lim)
        if not np.isfinite(lim) or lim <= 0:
            raise ValueError(f"lim must be a positive number (the grid spans [-lim, lim]^2) "
                             f"or (z1_min, z1_max, z2_min, z2_max), got {lim!r}")
        return -lim, lim, -lim, lim
    box = tuple(float(v) for v in np.ravel(lim))
    if len(box) != 4 or not (box[0] < box[1] and box[2] < box[3]) or not np.all(np.isfinite(box)):
        raise ValueError(f"lim must be a positive number or (z1_min, z1_max, z2_min, z2_max) "
                         f"with min < max, got {lim!r}")
    return box


def classify_grid(decode, classifier, lim=4.0, n=200, threshold=0.9, batch_size=4096):
    """Decode an n x n grid of 2-D codes and label each cell with the judge's digit.

    decode: a Keras decoder returning pixel *logits* (decoded with
    `aae.models.decode_batched`), or any callable codes (m, 2) -> probabilities (m, 784).
    classifier: a Keras model or callable images (m, 784) -> probabilities (m, 10).
    lim: the grid spans [-lim, lim]^2, or pass (z1_min, z1_max, z2_min, z2_max); the
    values are cell centres. Cells whose top probability is below `threshold` get UNCLEAR.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"grid size n must be an integer >= 2 (n x n cells), got {n!r}")
    threshold = _check_threshold(threshold)
    x0, x1, y0, y1 = _axis_limits(lim)
    xs, ys = np.linspace(x0, x1, n), np.linspace(y1, y0, n)
    codes = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2).astype("float32")
    is_keras = isinstance(decode, keras.Model)
    predicted, confidence = [], []
    for i in range(0, len(codes), batch_size):  # decode and judge chunk by chunk: bounded memory
        chunk = codes[i:i + batch_size]
        images = decode_batched(decode, chunk, batch_size) if is_keras else np.asarray(decode(chunk))
        probs = _predict_proba(classifier, np.asarray(images, "float32").reshape(len(chunk), -1),
                               batch_size)
        predicted.append(probs.argmax(1))
        confidence.append(probs.max(1))
    predicted = np.concatenate(predicted).reshape(n, n)
    confidence = np.concatenate(confidence).reshape(n, n)
    labels = np.where(confidence >= threshold, predicted, UNCLEAR)
    return OccupancyGrid(labels, predicted, confidence, xs, ys, threshold)


# --- models from earlier notebooks ----------------------------------------------------

def encode(encoder, x, batch_size=4096):
    """Codes (n, 2) of images x (n, 784); for an encoder returning [z_mean, z_log_var], z_mean."""
    x = np.asarray(x, "float32")
    codes = []
    for i in range(0, len(x), batch_size):  # direct calls: no predict-function retracing per model
        out = encoder(x[i:i + batch_size], training=False)
        codes.append(ops.convert_to_numpy(out[0] if isinstance(out, (list, tuple)) else out))
    return np.concatenate(codes).astype("float32")


def load_codec(results_dir, model):
    """Load `<results_dir>/models/<model>_encoder.keras` and `_decoder.keras`; (encoder, decoder).

    Raises FileNotFoundError naming the notebook that writes the missing files.
    """
    folder = Path(results_dir) / "models"
    paths = [folder / f"{model}_{part}.keras" for part in ("encoder", "decoder")]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        source = MODEL_SOURCES.get(model, f"the notebook that trains '{model}'")
        raise FileNotFoundError(
            f"model '{model}' is not trained yet: missing {', '.join(missing)}. Run {source} "
            f"first with the same results_dir ({results_dir}), or drop '{model}' from `models`.")
    return tuple(keras.saving.load_model(p, compile=False) for p in paths)


# --- priors: exact N(0, I), or Monte Carlo for anything else (e.g. aae.priors.MixturePrior) ---

def is_standard_normal(prior):
    """True for None or a 2-D `aae.priors.GaussianPrior` with scale 1: the exact N(0, I) path."""
    return prior is None or (type(prior).__name__ == "GaussianPrior"
                             and getattr(prior, "dim", 2) == 2 and float(prior.scale) == 1.0)


def prior_draws(prior, n=200_000, seed=0):
    """Monte Carlo samples (n, 2) of `prior` (anything with `sample(n, seed)`), or None for N(0, I)."""
    return None if is_standard_normal(prior) else _check_samples(prior.sample(n, seed=seed))


def covering_lim(samples, minimum=4.0, quantile=0.999, step=0.5):
    """Half-width of a square grid holding `quantile` of each coordinate of `samples` (m, 2).

    Rounded up to a multiple of `step`, and at least `minimum`; `samples` None gives `minimum`.
    """
    if samples is None:
        return float(minimum)
    reach = np.quantile(np.abs(_check_samples(samples)), quantile, axis=0).max()
    return float(max(minimum, step * np.ceil(reach / step)))


def prior_log_density(prior):
    """log p(z) in nats, a callable (m, 2) -> (m,), for 2-D aae.priors Gaussian/mixture priors.

    Returns None for other priors (`density_region` then falls back to a KDE of samples).
    """
    if hasattr(prior, "means") and hasattr(prior, "std"):  # equal-weight isotropic mixture
        means, var = np.asarray(prior.means, "float64"), float(prior.std) ** 2

        def log_density(z):
            d2 = ((np.asarray(z, "float64")[:, None, :] - means[None]) ** 2).sum(-1)
            return logsumexp(-0.5 * d2 / var, axis=1) - np.log(len(means) * 2 * np.pi * var)
        return log_density
    if prior is None or hasattr(prior, "scale"):
        var = 1.0 if prior is None else float(prior.scale) ** 2
        return lambda z: -0.5 * (np.asarray(z, "float64") ** 2).sum(-1) / var - np.log(2 * np.pi * var)
    return None


def prior_region(grid, prior=None, samples=None, level=0.95):
    """Boolean (n, n) mask of the prior's `level` region: the exact disc for N(0, I), else
    the highest-density region from `samples` (see `density_region`)."""
    if is_standard_normal(prior):
        return normal_region(grid, level)
    if samples is None:
        raise ValueError("a prior other than N(0, I) needs its Monte Carlo samples (prior_draws)")
    return density_region(grid, samples, prior_log_density(prior), level)


# --- measurements ---------------------------------------------------------------------

def _check_samples(samples):
    samples = np.asarray(samples, "float64")
    if samples.ndim != 2 or samples.shape[1] != 2 or len(samples) == 0:
        raise ValueError(f"prior samples must have shape (m, 2) with m >= 1, got {samples.shape}")
    return samples


def _cell_prior_mass(grid, prior_samples=None):
    """Prior mass per cell (n*n,) and the grid's total prior mass (<= 1)."""
    if prior_samples is None:
        # Exact N(0, I) mass of each cell: a product of 1-D normal CDF differences.
        px = norm.cdf(grid.xs + grid.dx / 2) - norm.cdf(grid.xs - grid.dx / 2)
        py = norm.cdf(grid.ys + grid.dy / 2) - norm.cdf(grid.ys - grid.dy / 2)
        mass = np.outer(py, px).ravel()
        return mass, float(mass.sum())
    samples = _check_samples(prior_samples)
    inside = grid.inside(samples)
    mass = np.bincount(grid.cell_index(samples[inside]), minlength=grid.n ** 2) / len(samples)
    return mass, float(inside.mean())


def prior_mass_shares(grid, prior_samples=None):
    """Share of the prior's probability mass decoded as each digit; (11,), last = unclear.

    prior_samples None: the N(0, I) prior, each cell weighted by its exact mass. Otherwise
    Monte Carlo: samples (m, 2) from any prior (e.g. an AAE's mixture), each counted in its
    nearest cell. Either way the shares are renormalised over the mass that falls on the
    grid (see `prior_coverage`).
    """
    mass, total = _cell_prior_mass(grid, prior_samples)
    if total <= 0:
        raise ValueError("no prior mass falls on the grid; widen `lim` in classify_grid")
    return np.bincount(grid.labels.ravel(), weights=mass, minlength=11) / mass.sum()


def prior_coverage(grid, prior_samples=None):
    """Fraction of the prior's mass on the grid (N(0, I) exact, or of `prior_samples`)."""
    return _cell_prior_mass(grid, prior_samples)[1]


def normal_region(grid, level=0.95):
    """Boolean (n, n) mask of cells inside the N(0, I) `level` region, |z| <= sqrt(chi2.ppf(level, 2))."""
    radius = np.sqrt(chi2.ppf(level, 2))
    return (np.linalg.norm(grid.codes, axis=1) <= radius).reshape(grid.n, grid.n)


def density_region(grid, samples, log_density=None, level=0.95):
    """Boolean (n, n) mask of the prior's highest-density `level` region, for any prior.

    The region is {z : p(z) >= t} with t the (1 - level) quantile of p over prior `samples`
    (m, 2). `log_density` maps (m, 2) -> (m,) in nats; None uses a Gaussian KDE of the samples.
    For N(0, I) this is the disc of `normal_region`.
    """
    samples = _check_samples(samples)
    if log_density is None:
        from scipy.stats import gaussian_kde

        kde = gaussian_kde(samples.T)
        log_density = lambda z: kde.logpdf(np.asarray(z).T)  # noqa: E731
    cut = np.quantile(np.asarray(log_density(samples)), 1.0 - level)
    return (np.asarray(log_density(grid.codes)) >= cut).reshape(grid.n, grid.n)


def area_shares(grid, region=None):
    """Share of the area inside `region` (n, n) taken by each digit; (11,), last = unclear.

    region None: the N(0, I) 95% disc. Raises if the region reaches the grid's edge.
    """
    region = normal_region(grid) if region is None else np.asarray(region, bool)
    if region.shape != grid.labels.shape:
        raise ValueError(f"region must be a mask of shape {grid.labels.shape}, got {region.shape}")
    if not region.any():
        raise ValueError("the region holds no grid cell; use a finer grid (larger n)")
    if region[0].any() or region[-1].any() or region[:, 0].any() or region[:, -1].any():
        raise ValueError("the region reaches the edge of the grid, so part of it is not "
                         "measured; widen `lim` in classify_grid")
    return np.bincount(grid.labels[region], minlength=11) / region.sum()


def sweep_shares(grid):
    """Share of the whole grid square taken by each digit; (11,), last = unclear.

    What the eye reads off a sweep with evenly spaced codes over the same square.
    """
    return np.bincount(grid.labels.ravel(), minlength=11) / grid.labels.size


def own_region_shares(grid, codes, labels):
    """Per digit, the fraction of its codes (m, 2) whose nearest grid cell decodes to it; (10,).

    NaN for a digit absent from `labels`. Codes outside the grid use the nearest edge cell.
    """
    labels = np.asarray(labels)
    hit = grid.label_at(codes) == labels
    total = np.bincount(labels, minlength=10)[:10]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.bincount(labels[hit], minlength=10)[:10] / total


def _frequencies(train_counts):
    counts = (np.array([train_counts[d] for d in range(10)], "float64")
              if isinstance(train_counts, dict) else np.asarray(train_counts, "float64"))
    if counts.shape != (10,) or counts.min() < 0 or counts.sum() <= 0:
        raise ValueError(f"train_counts must give 10 non-negative digit counts, got {counts}")
    return counts / counts.sum()


def balance(shares, train_counts):
    """Compare digit shares (10 or 11,) with training frequencies (counts dict or (10,) array).

    Shares are renormalised over the ten clear digits (all values are NaN if no digit is
    clear, e.g. a weak judge or an untrained model). Returns a dict: `kl_nats`,
    KL(shares || training frequencies) in nats (0 = same balance as the data);
    `entropy_ratio`, H(shares) / H(frequencies) (1 = as even as the data, < 1 = a few
    digits dominate); `over_representation` (10,), share / frequency (1 = fair);
    `clear_shares` (10,), the renormalised shares.
    """
    p = np.asarray(shares, "float64")[:10]
    q = _frequencies(train_counts)
    if p.sum() <= 0:
        nan = np.full(10, np.nan)
        return {"kl_nats": np.nan, "entropy_ratio": np.nan, "over_representation": nan,
                "clear_shares": nan}
    p = p / p.sum()
    return {"kl_nats": float(entropy(p, q)), "entropy_ratio": float(entropy(p) / entropy(q)),
            "over_representation": p / q, "clear_shares": p}


def _finite(value):
    """float, or None for NaN/inf (JSON has no NaN)."""
    return float(value) if np.isfinite(value) else None


def _named(values, names=SHARE_NAMES):
    return {name: _finite(v) for name, v in zip(names, values)}


def occupancy_summary(grid, train_counts, codes=None, labels=None, prior_samples=None,
                      region=None):
    """All occupancy numbers for one model as a JSON-ready dict (shares keyed "0".."9", "unclear").

    Numbers that need a clear digit (KL, ratios) are None when the whole grid is unclear.

    prior_samples / region: as in `prior_mass_shares` / `area_shares` (None = N(0, I));
    `area_share_95` is over `region`, `sweep_share` over the whole grid square.
    codes, labels: encoded test set (m, 2) and its digits, for `own_region_share`.
    """
    mass = prior_mass_shares(grid, prior_samples)
    bal = balance(mass, train_counts)
    summary = {
        "prior_mass_share": _named(mass),
        "clear_prior_mass_share": _named(bal["clear_shares"]),  # renormalised over digits 0..9
        "area_share_95": _named(area_shares(grid, region)),
        "sweep_share": _named(sweep_shares(grid)),
        "prior_mass_on_grid": prior_coverage(grid, prior_samples),
        "kl_nats": _finite(bal["kl_nats"]),
        "entropy_ratio": _finite(bal["entropy_ratio"]),
        "over_representation": _named(bal["over_representation"]),
        "most_over_represented": (None if np.isnan(bal["kl_nats"])
                                  else int(np.argmax(bal["over_representation"]))),
        "training_frequency": _named(_frequencies(train_counts)),
        "confidence_threshold": grid.threshold,
        "grid": {"n": grid.n, "extent": [float(v) for v in grid.extent]},
    }
    if codes is not None:
        own = own_region_shares(grid, codes, labels)
        summary["own_region_share"] = _named(own, SHARE_NAMES[:10])  # None: digit absent
        summary["own_region_share_all"] = float(np.mean(grid.label_at(codes) == np.asarray(labels)))
    return summary


# --- figures -----------------------------------------------------------------------------

def occupancy_map(grid, ax=None, codes=None, labels=None, region=None, title=None, s=3):
    """Latent plane coloured by decoded digit (DIGIT_COLORS; unclear in grey).

    codes, labels: optional test codes (m, 2) drawn on top in their true digit's colour
    (black rim), so codes in a wrong region stand out. region: a radius (draws that circle)
    or a boolean (n, n) mask (draws its outline), e.g. the prior's 95% region.
    """
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.5, 5.5))
    cmap = ListedColormap(list(DIGIT_COLORS) + [UNCLEAR_COLOR])
    ax.imshow(grid.labels, cmap=cmap, vmin=-0.5, vmax=10.5, extent=grid.extent,
              interpolation="nearest", alpha=0.6 if codes is not None else 0.9)
    with plt.rc_context({"hatch.color": "0.55", "hatch.linewidth": 0.6}):
        ax.contourf(grid.xs, grid.ys, (grid.labels == UNCLEAR).astype(float), levels=[0.5, 1.5],
                    colors="none", hatches=["////"])
    if codes is not None:
        codes, labels = np.asarray(codes), np.asarray(labels)
        ax.scatter(codes[:, 0], codes[:, 1], s=s, c=[DIGIT_COLORS[d] for d in labels],
                   edgecolors="k", linewidths=0.2, rasterized=True)
    if region is not None:
        if np.ndim(region) == 0:
            ax.add_patch(Circle((0, 0), float(region), fill=False, ls="--", lw=1.5, ec="k"))
        else:
            ax.contour(grid.xs, grid.ys, np.asarray(region, float), levels=[0.5],
                       colors="k", linestyles="--", linewidths=1.5)
    left, right, bottom, top = grid.extent
    ax.set_xlim(left, right), ax.set_ylim(bottom, top)
    ax.set_aspect("equal")
    handles = [Patch(color=DIGIT_COLORS[d], label=str(d)) for d in range(10)]
    handles.append(Patch(facecolor=UNCLEAR_COLOR, edgecolor="0.55", hatch="////",
                         label=f"unclear (< {grid.threshold:g})"))
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False,
              title="decodes to")
    ax.set_xlabel("$z_1$"), ax.set_ylabel("$z_2$")
    if title:
        ax.set_title(title)
    return fig or ax.figure


SERIES_COLORS = ["0.6", "#1f3b73", "#6f9bd1", "#b9d3ee"]  # neutral, so digits keep their colours


def occupancy_bars(series, ax=None, title=None, colors=SERIES_COLORS):
    """Grouped bars: one group per digit (plus "unclear"), one bar per entry of `series`.

    series: {name: shares (10,) or (11,)}; a (10,) series (e.g. training frequencies)
    has no unclear bar. Tick labels carry the digit colours.
    """
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(10, 3.5))
    k = len(series)
    width = 0.8 / k
    x = np.arange(max(len(v) for v in series.values()))  # 10 digits, or 11 with "unclear"
    for i, (name, values) in enumerate(series.items()):
        values = np.asarray(values, "float64")
        xi = x[:len(values)] + (i - (k - 1) / 2) * width
        ax.bar(xi, values, width, label=name, color=colors[i % len(colors)], edgecolor="k",
               linewidth=0.3)
    ax.axhline(0.1, color="k", lw=0.6, ls=":")  # a perfectly even split of ten digits
    ax.set_xticks(x, SHARE_NAMES[:len(x)])
    for tick, color in zip(ax.get_xticklabels(), list(DIGIT_COLORS) + ["0.4"]):
        tick.set_color(color), tick.set_fontweight("bold")
    ax.set_ylabel("share")
    ax.legend(frameon=False, fontsize=9, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    if title:
        ax.set_title(title)
    return fig or ax.figure


SHARE_SERIES = {"prior_mass_share": ("prior-mass share", "prior mass"),
                "area_share_95": ("area share (95% region)", "95% region"),
                "sweep_share": ("sweep share (whole square)", "square")}


def shares_figure(summaries, train_counts, clear=True):
    """One `occupancy_bars` panel per model: training frequency next to the measured shares.

    summaries: {model: occupancy_summary(...)}. With `clear`, every share is renormalised over
    the ten clear digits (the scale the training frequencies live on, and the one the
    over-representation ratio uses) and the unclear shares go into the panel title;
    otherwise the raw shares are drawn with an "unclear" group.
    """
    freq = _frequencies(train_counts)
    fig, axes = plt.subplots(len(summaries), 1, figsize=(10, 3.2 * len(summaries)),
                             sharex=True, sharey=True, squeeze=False)
    for ax, (model, summary) in zip(axes[:, 0], summaries.items()):
        series = {"training frequency": freq}
        for key, (name, _) in SHARE_SERIES.items():
            values = np.array([summary[key][k] for k in SHARE_NAMES], "float64")
            with np.errstate(invalid="ignore", divide="ignore"):  # NaN bars: nothing clear
                series[name] = values[:10] / values[:10].sum() if clear else values
        if summary["kl_nats"] is None:
            title = f"{model}: no decoded image is a clear digit"
        else:
            title = (f"{model}: KL = {summary['kl_nats']:.3f} nats, entropy ratio = "
                     f"{summary['entropy_ratio']:.3f}, zero x{summary['over_representation']['0']:.2f}")
        if clear:
            title += "\nunclear, left out: " + ", ".join(
                f"{summary[key]['unclear']:.0%} of the {where}" for key, (_, where) in SHARE_SERIES.items())
        occupancy_bars(series, ax=ax, title=title)
        if clear:
            ax.set_ylabel("share of clear digits")
    axes[-1, 0].set_xlabel("digit the decoded image is judged to be")
    fig.tight_layout()
    return fig
