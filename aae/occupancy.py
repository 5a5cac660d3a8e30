"""How much of a 2-D latent space each digit occupies (notebook 05_latent_occupancy).

The judge (`aae.judge`) labels what every point of a dense latent grid decodes to; from that
labelled grid we measure, per digit, the share of the prior's probability mass, the share of the
area inside the prior's 95% region, and how many encoded test digits fall in their own region.
Grid labels are 0..9 for digits and `UNCLEAR` (= 10) where the judge is not confident. The
figures are in `aae.plotting`, the sentences that sum the numbers up in `aae.verdicts`.
"""
from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from scipy.stats import chi2, entropy, norm

from .checks import fraction
from .judge import predict_proba
from .models import decode_batched

__all__ = ["UNCLEAR", "SHARE_NAMES", "OccupancyGrid", "classify_grid", "prior_draws", "covering_lim",
           "prior_region", "prior_mass_shares", "prior_coverage", "normal_region", "density_region",
           "area_shares", "sweep_shares", "own_region_shares", "balance", "frequencies", "occupancy_summary"]

UNCLEAR = 10              # grid label of cells whose decoded image the judge is unsure about
SHARE_NAMES = [str(d) for d in range(10)] + ["unclear"]


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
    return fraction("threshold", threshold, " It is the judge's minimum confidence.")


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
        probs = predict_proba(classifier, images, batch_size)
        predicted.append(probs.argmax(1))
        confidence.append(probs.max(1))
    predicted = np.concatenate(predicted).reshape(n, n)
    confidence = np.concatenate(confidence).reshape(n, n)
    labels = np.where(confidence >= threshold, predicted, UNCLEAR)
    return OccupancyGrid(labels, predicted, confidence, xs, ys, threshold)


# --- priors: exact N(0, I), or Monte Carlo for anything else (e.g. aae.priors.MixturePrior) ---

def _standard_normal(prior):
    """None or a 2-D N(0, I) prior: occupancy measures these exactly (no Monte Carlo)."""
    return prior is None or prior.is_standard_normal


def prior_draws(prior, n=200_000, seed=0):
    """Monte Carlo samples (n, 2) of `prior` (anything with `sample(n, seed)`), or None for N(0, I)."""
    return None if _standard_normal(prior) else _check_samples(prior.sample(n, seed=seed))


def covering_lim(samples, minimum=4.0, quantile=0.999, step=0.5):
    """Half-width of a square grid holding `quantile` of each coordinate of `samples` (m, 2).

    Rounded up to a multiple of `step`, and at least `minimum`; `samples` None gives `minimum`.
    """
    if samples is None:
        return float(minimum)
    reach = np.quantile(np.abs(_check_samples(samples)), quantile, axis=0).max()
    return float(max(minimum, step * np.ceil(reach / step)))


def prior_region(grid, prior=None, samples=None, level=0.95):
    """Boolean (n, n) mask of the prior's `level` region: the exact disc for N(0, I), else
    the highest-density region from `samples` (see `density_region`)."""
    if _standard_normal(prior):
        return normal_region(grid, level)
    if samples is None:
        raise ValueError("a prior other than N(0, I) needs its Monte Carlo samples (prior_draws)")
    return density_region(grid, samples, prior.log_density, level)


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
    if log_density is None or log_density(samples[:1]) is None:  # no closed form: a KDE of the samples
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


def frequencies(train_counts):
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
    `clear_shares` (10,), the renormalised shares; `most_over_represented` and `least_served`, the
    digits with the largest and the smallest finite over-representation (digits absent from training
    have no fair share and are left out; both None if no digit is clear).
    """
    p = np.asarray(shares, "float64")[:10]
    q = frequencies(train_counts)
    if p.sum() <= 0:
        nan = np.full(10, np.nan)
        return {"kl_nats": np.nan, "entropy_ratio": np.nan, "over_representation": nan,
                "clear_shares": nan, "most_over_represented": None, "least_served": None}
    p = p / p.sum()
    with np.errstate(divide="ignore", invalid="ignore"):  # a digit absent from training: inf or NaN
        ratio = p / q
    fair = np.isfinite(ratio)
    return {"kl_nats": float(entropy(p, q)), "entropy_ratio": float(entropy(p) / entropy(q)),
            "over_representation": ratio, "clear_shares": p,
            "most_over_represented": int(np.argmax(np.where(fair, ratio, -np.inf))),
            "least_served": int(np.argmin(np.where(fair, ratio, np.inf)))}


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
        "most_over_represented": bal["most_over_represented"],
        "least_served": bal["least_served"],
        "training_frequency": _named(frequencies(train_counts)),
        "confidence_threshold": grid.threshold,
        "grid": {"n": grid.n, "extent": [float(v) for v in grid.extent]},
    }
    if codes is not None:
        own = own_region_shares(grid, codes, labels)
        summary["own_region_share"] = _named(own, SHARE_NAMES[:10])  # None: digit absent
        summary["own_region_share_all"] = float(np.mean(grid.label_at(codes) == np.asarray(labels)))
    return summary
