"""Figures shared by the notebooks, and `save_figure` that writes them atomically."""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import norm

from .files import atomic_path

__all__ = ["save_figure", "reconstruction_grid", "latent_scatter", "latent_grid",
           "latent_sweep", "tsne_scatter", "DIGIT_COLORS"]

DPI = 100
DIGIT_COLORS = plt.get_cmap("tab10").colors  # one colour per digit, the same in every figure


def save_figure(fig, name, results_dir="results"):
    """Write `fig` as `<results_dir>/<name>.png` atomically (temporary file, then rename).

    Returns the path. A crash mid-write leaves the previous file intact, never half a PNG.
    """
    name = str(name)
    if not name or os.sep in name or name.startswith("."):
        raise ValueError(f"figure name must be a plain file name like 'va_mnist', got {name!r}")
    path = Path(results_dir) / (name if name.endswith(".png") else name + ".png")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    return path


def _images(x, n, side=28):
    return np.asarray(x[:n]).reshape(-1, side, side)


def reconstruction_grid(originals, reconstructions, n=10, title=None):
    """Originals in the top row, their reconstructions below; inputs (n, 784) or (n, 28, 28[, 1])."""
    top, bottom = _images(originals, n), _images(reconstructions, n)
    fig, axes = plt.subplots(2, n, figsize=(n * 1.0, 2.2))
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


def latent_scatter(z, y, ax=None, title=None, background=None, s=2, alpha=0.6):
    """Scatter of 2-D codes `z` (n, 2) coloured by digit `y`, with a legend.

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
                   label=str(digit), rasterized=True)
    ax.legend(markerscale=6 / s ** 0.5, loc="center left", bbox_to_anchor=(1.0, 0.5),
              frameon=False, title="digit")
    ax.set_xlabel("$z_1$"), ax.set_ylabel("$z_2$")
    if title:
        ax.set_title(title)
    return fig or ax.figure


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


def latent_sweep(decode, n=20, lim=None, quantile=0.05, side=28, title=None):
    """Decode an n x n sweep over a 2-D latent space in one batched call and tile the digits.

    `decode` maps codes (n*n, 2) to pixel values (n*n, side*side).
    """
    grid, xs, ys = latent_grid(n, lim, quantile)
    digits = np.asarray(decode(grid)).reshape(n, n, side, side)
    canvas = digits.transpose(0, 2, 1, 3).reshape(n * side, n * side)
    fig, ax = plt.subplots(figsize=(8, 8))
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1)
    # ticks at tile centres, labelled with the code there (the grid need not be linear in z)
    idx = np.unique(np.linspace(0, n - 1, min(n, 5)).round().astype(int))
    ax.set_xticks(idx * side + side / 2 - 0.5, [f"{xs[i]:.2f}" for i in idx])
    ax.set_yticks(idx * side + side / 2 - 0.5, [f"{ys[i]:.2f}" for i in idx])
    ax.set_xlabel("$z_1$"), ax.set_ylabel("$z_2$")
    if title:
        ax.set_title(title)
    return fig


def tsne_scatter(codes, y, n=3000, seed=0, title=None):
    """t-SNE (scikit-learn) of the first `n` codes to 2-D, scattered by digit."""
    from sklearn.manifold import TSNE

    codes, y = np.asarray(codes)[:n], np.asarray(y)[:n]
    emb = TSNE(n_components=2, init="pca", random_state=seed, perplexity=30).fit_transform(codes)
    fig = latent_scatter(emb, y, title=title, s=4)
    fig.axes[0].set_xlabel("t-SNE 1"), fig.axes[0].set_ylabel("t-SNE 2")
    return fig
