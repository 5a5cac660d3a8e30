"""Figures shared by the notebooks, and `save_figure` that writes them atomically."""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.patches import Circle, Patch
from scipy.stats import norm

from .files import atomic_path
from .occupancy import SHARE_NAMES, UNCLEAR, frequencies

__all__ = ["save_figure", "reconstruction_grid", "image_grid", "latent_scatter", "latent_grid",
           "latent_sweep", "latent_view", "tsne_scatter", "occupancy_map", "occupancy_bars", "shares_figure",
           "DIGIT_COLORS", "UNCLEAR_COLOR"]

DPI = 100
DIGIT_COLORS = plt.get_cmap("tab10").colors  # one colour per digit, the same in every figure
DIGITS = [str(d) for d in range(10)]


def _legend_title(classes):
    return "digit" if list(classes) == DIGITS else "class"
UNCLEAR_COLOR = "0.88"    # occupancy maps: light grey, hatched (tab10 gives digit 7 a mid grey)


def save_figure(fig, name, results_dir="results"):
    """Write `fig` as `<results_dir>/<name>.png` atomically (temporary file, then rename).

    Returns the path. A crash mid-write leaves the previous file intact, never half a PNG.
    """
    name = str(name)
    if not name or os.sep in name or name.startswith("."):
        raise ValueError(f"figure name must be a plain file name like 'vae_reconstruction', got {name!r}")
    path = Path(results_dir) / (name if name.endswith(".png") else name + ".png")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    return path


def _images(x, n, side=28):
    return np.asarray(x[:n]).reshape(-1, side, side)


def _tile(images, n, side=28):
    """The first n * n images as one (n * side, n * side) canvas, row by row."""
    return np.asarray(images[:n * n]).reshape(n, n, side, side).transpose(0, 2, 1, 3).reshape(n * side, n * side)


def image_grid(images, n=10, title=None, side=28):
    """The first n x n images (rows of pixel values in [0, 1]) tiled in one square figure,
    row by row: digits decoded from prior samples, say."""
    if len(images) < n * n:
        raise ValueError(f"an {n} x {n} grid needs {n * n} images, got {len(images)}; pass more or a smaller n.")
    fig, ax = plt.subplots(figsize=(7, 7))
    ax.imshow(_tile(images, n, side), cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig


def reconstruction_grid(originals, reconstructions, n=10, title=None):
    """Originals in the top row, their reconstructions below; inputs (n, 784) or (n, 28, 28[, 1])."""
    top, bottom = _images(originals, n), _images(reconstructions, n)
    fig, axes = plt.subplots(2, n, figsize=(n * 1.0, 2.2), squeeze=False)  # n = 1 too
    for i in range(n):
        for row, imgs in enumerate((top, bottom)):
            ax = axes[row, i]
            ax.imshow(imgs[i], cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
    axes[0, 0].set_ylabel("input", fontsize=9)
    axes[1, 0].set_ylabel("output", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def latent_scatter(z, y, ax=None, title=None, background=None, s=2, alpha=0.6,
                   axis_labels=("$z_1$", "$z_2$"), classes=DIGITS):
    """Scatter of 2-D codes `z` (n, 2) coloured by class `y`, with a legend naming `classes`
    (`aae.data.class_names(dataset)`; digits by default).

    `background`: optional (m, 2) points (e.g. prior samples) drawn faintly underneath.
    """
    z, y = np.asarray(z), np.asarray(y)
    if z.ndim != 2 or z.shape[1] != 2:
        raise ValueError(f"latent_scatter needs 2-D codes of shape (n, 2), got {z.shape}; "
                         "use tsne_scatter for longer codes")
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 5.5))
    if background is not None:
        ax.scatter(*np.asarray(background).T, s=1, c="0.8", alpha=0.4, label="prior", rasterized=True)
    for digit in range(10):
        sel = y == digit
        ax.scatter(z[sel, 0], z[sel, 1], s=s, alpha=alpha, color=DIGIT_COLORS[digit],
                   label=classes[digit], rasterized=True)
    ax.legend(markerscale=6 / s ** 0.5, loc="center left", bbox_to_anchor=(1.0, 0.5),
              frameon=False, title=_legend_title(classes))
    ax.set_xlabel(axis_labels[0]), ax.set_ylabel(axis_labels[1])
    if title:
        ax.set_title(title)
    return fig or ax.figure


def latent_view(z, seed=0):
    """A 2-D view of codes z (n, d) and its axis labels: the codes themselves for d = 2, else
    their first two principal components (scikit-learn's PCA), labelled with the variance each
    explains."""
    z = np.asarray(z, "float64")
    if z.ndim != 2 or z.shape[1] < 2:
        raise ValueError(f"codes must have shape (n, d) with d >= 2 to show in a plane, got {z.shape}")
    if z.shape[1] == 2:
        return z, ("$z_1$", "$z_2$")
    from sklearn.decomposition import PCA

    pca = PCA(2, random_state=seed).fit(z)
    share = pca.explained_variance_ratio_
    return pca.transform(z), (f"principal component 1 ({share[0]:.0%} of the variance)",
                              f"principal component 2 ({share[1]:.0%})")


def latent_grid(n=20, lim=None, quantile=0.05):
    """Grid of n x n 2-D codes, row-major with z_2 decreasing downwards; returns (grid, xs, ys).

    With `lim` the grid is linear on [-lim, lim]; otherwise it follows the standard normal's
    quantiles from `quantile` to 1 - `quantile` (even prior mass per cell).
    """
    if lim is None:
        xs = norm.ppf(np.linspace(quantile, 1 - quantile, n))
    else:
        xs = np.linspace(-lim, lim, n)
    ys = xs[::-1]
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2).astype("float32")
    return grid, xs, ys


def latent_sweep(decode, n=20, lim=None, quantile=0.05, side=28, title=None, dims=(0, 1),
                 latent_dim=2):
    """Decode an n x n sweep over a 2-D latent space in one batched call and tile the digits.

    `decode` maps codes (n*n, latent_dim) to pixel values (n*n, side*side). With `latent_dim`
    above 2 the sweep varies the two dimensions `dims` and holds the others at 0.
    """
    dims = [int(d) for d in dims]
    if len(dims) != 2 or dims[0] == dims[1] or not all(0 <= d < latent_dim for d in dims):
        raise ValueError(f"dims must name two different latent dimensions in 0..{latent_dim - 1}, "
                         f"got {dims}")
    plane, xs, ys = latent_grid(n, lim, quantile)
    grid = np.zeros((len(plane), latent_dim), "float32")
    grid[:, dims] = plane
    fig, ax = plt.subplots(figsize=(8, 8))
    ax.imshow(_tile(decode(grid), n, side), cmap="gray", vmin=0, vmax=1)
    # ticks at tile centres, labelled with the code there (the grid need not be linear in z)
    idx = np.unique(np.linspace(0, n - 1, min(n, 5)).round().astype(int))
    ax.set_xticks(idx * side + side / 2 - 0.5, [f"{xs[i]:.2f}" for i in idx])
    ax.set_yticks(idx * side + side / 2 - 0.5, [f"{ys[i]:.2f}" for i in idx])
    ax.set_xlabel(f"$z_{dims[0] + 1}$"), ax.set_ylabel(f"$z_{dims[1] + 1}$")
    if title:
        ax.set_title(title)
    return fig


def tsne_scatter(codes, y, n=3000, seed=0, title=None, classes=DIGITS):
    """t-SNE (scikit-learn) of the first `n` codes to 2-D, scattered by digit."""
    from sklearn.manifold import TSNE

    codes, y = np.asarray(codes)[:n], np.asarray(y)[:n]
    emb = TSNE(n_components=2, init="pca", random_state=seed, perplexity=30).fit_transform(codes)
    fig = latent_scatter(emb, y, title=title, s=4, classes=classes)
    fig.axes[0].set_xlabel("t-SNE 1"), fig.axes[0].set_ylabel("t-SNE 2")
    return fig


# --- latent occupancy (notebook 05; the numbers come from aae.occupancy) ------------------

def occupancy_map(grid, ax=None, codes=None, labels=None, region=None, title=None, s=3, classes=DIGITS):
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
    handles = [Patch(color=DIGIT_COLORS[d], label=classes[d]) for d in range(10)]
    handles.append(Patch(facecolor=UNCLEAR_COLOR, edgecolor="0.55", hatch="////",
                         label=f"unclear (< {grid.threshold:g})"))
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False,
              title="decodes to")
    ax.set_xlabel("$z_1$"), ax.set_ylabel("$z_2$")
    if title:
        ax.set_title(title)
    return fig or ax.figure


SERIES_COLORS = ["0.6", "#1f3b73", "#6f9bd1", "#b9d3ee"]  # neutral, so digits keep their colours


def occupancy_bars(series, ax=None, title=None, colors=SERIES_COLORS, classes=DIGITS):
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
    ax.set_xticks(x, (list(classes) + ["unclear"])[:len(x)],
                  rotation=0 if list(classes) == DIGITS else 30, ha="center" if list(classes) == DIGITS else "right")
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


def shares_figure(summaries, train_counts, clear=True, classes=DIGITS):
    """One `occupancy_bars` panel per model: training frequency next to the measured shares.

    summaries: {model: occupancy_summary(...)}. With `clear`, every share is renormalised over
    the ten clear digits (the scale the training frequencies live on, and the one the
    over-representation ratio uses) and the unclear shares go into the panel title;
    otherwise the raw shares are drawn with an "unclear" group.
    """
    freq = frequencies(train_counts)
    fig, axes = plt.subplots(len(summaries), 1, figsize=(10, 3.2 * len(summaries)),
                             sharex=True, sharey=True, squeeze=False)
    for ax, (model, summary) in zip(axes[:, 0], summaries.items()):
        series = {"training frequency": freq}
        for key, (name, _) in SHARE_SERIES.items():
            values = np.array([summary[key][k] for k in SHARE_NAMES], "float64")
            with np.errstate(invalid="ignore", divide="ignore"):  # NaN bars: nothing clear
                series[name] = values[:10] / values[:10].sum() if clear else values
        if summary["kl_nats"] is None:
            title = f"{model}: no decoded image is a clear {_legend_title(classes)}"
        else:
            first = "zero" if list(classes) == DIGITS else classes[0]
            title = (f"{model}: KL = {summary['kl_nats']:.3f} nats, entropy ratio = "
                     f"{summary['entropy_ratio']:.3f}, {first} x{summary['over_representation']['0']:.2f}")
        if clear:
            title += "\nunclear, left out: " + ", ".join(
                f"{summary[key]['unclear']:.0%} of the {where}" for key, (_, where) in SHARE_SERIES.items())
        occupancy_bars(series, ax=ax, title=title, classes=classes)
        if clear:
            ax.set_ylabel("share of clear " + ("digits" if list(classes) == DIGITS else "classes"))
    axes[-1, 0].set_xlabel(f"{_legend_title(classes)} the decoded image is judged to be")
    fig.tight_layout()
    return fig
