"""Figures are written as valid PNGs, atomically, and decoded grids come from one call."""
import numpy as np
import pytest
import matplotlib.pyplot as plt
from matplotlib.image import imread

from aae.plotting import (image_grid, latent_grid, latent_scatter, latent_sweep, reconstruction_grid,
                          save_figure, tsne_scatter)

rng = np.random.default_rng(0)


def _read(path):
    img = imread(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return img


def test_reconstruction_grid(tmp_path):
    x = rng.uniform(size=(10, 784))
    path = save_figure(reconstruction_grid(x, 1 - x), "recon", tmp_path)
    img = _read(path)
    assert img.shape[0] > 100 and img.shape[1] > 500
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recon.png"]  # no temp files left


def test_image_grid_tiles_row_by_row():
    images = np.zeros((7, 784))
    images[1, :28] = 1.0  # the top pixel row of the second image: row 0, column 1 of the grid
    fig = image_grid(images, n=2, title="t")
    canvas = fig.axes[0].get_images()[0].get_array()
    assert canvas.shape == (56, 56)
    assert canvas[0, 28:].min() == 1.0 and canvas.sum() == 28
    with pytest.raises(ValueError, match="needs 9 images, got 7"):
        image_grid(images, n=3)
    plt.close("all")


def test_latent_scatter_has_legend(tmp_path):
    fig = latent_scatter(rng.normal(size=(500, 2)), rng.integers(0, 10, 500),
                         background=rng.normal(size=(100, 2)))
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["prior"] + [str(d) for d in range(10)]
    _read(save_figure(fig, "scatter", tmp_path))


def test_latent_scatter_rejects_long_codes():
    with pytest.raises(ValueError, match="use tsne_scatter"):
        latent_scatter(np.zeros((5, 32)), np.zeros(5))


def test_latent_sweep_single_batched_call(tmp_path):
    calls = []

    def decode(z):
        calls.append(z.shape)
        # brightness encodes z_1 so the tiling order can be checked
        return np.repeat((z[:, :1] > 0).astype("float32"), 784, axis=1)

    fig = latent_sweep(decode, n=20, lim=3)
    assert calls == [(400, 2)]
    canvas = fig.axes[0].images[0].get_array()
    assert canvas.shape == (560, 560)
    assert canvas[:, :28].max() == 0 and canvas[:, -28:].min() == 1  # z_1 grows to the right
    _read(save_figure(fig, "sweep", tmp_path))


def test_latent_grid_quantiles():
    grid, xs, ys = latent_grid(n=5, quantile=0.05)
    assert grid.shape == (25, 2)
    np.testing.assert_allclose(xs[[0, -1]], [-1.6448536, 1.6448536], rtol=1e-6)
    assert ys[0] > ys[-1] and np.isclose(grid[0, 1], ys[0])


def test_tsne_scatter(tmp_path):
    codes = np.concatenate([rng.normal(loc=5 * d, size=(30, 32)) for d in range(10)])
    y = np.repeat(np.arange(10), 30)
    _read(save_figure(tsne_scatter(codes, y, n=300), "tsne", tmp_path))


def test_save_figure_is_atomic(tmp_path, monkeypatch):
    fig = plt.figure()
    save_figure(fig, "keep", tmp_path)
    good = (tmp_path / "keep.png").read_bytes()

    def broken(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(fig, "savefig", broken)
    with pytest.raises(RuntimeError):
        save_figure(fig, "keep", tmp_path)
    assert (tmp_path / "keep.png").read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["keep.png"]


def test_save_figure_rejects_paths(tmp_path):
    with pytest.raises(ValueError, match="plain file name"):
        save_figure(plt.figure(), "../escape", tmp_path)


def test_saved_files_are_readable_by_others(tmp_path):
    import os
    import stat
    old = os.umask(0o022)
    try:
        path = save_figure(plt.figure(), "perm", tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_latent_view_is_the_codes_in_2d_and_pca_above():
    from aae.plotting import latent_view
    rng = np.random.default_rng(0)
    z2 = rng.normal(size=(50, 2))
    view, labels = latent_view(z2)
    np.testing.assert_array_equal(view, z2)
    assert labels == ("$z_1$", "$z_2$")
    # 5-D codes that vary only along dimensions 0 and 3: the PCA view keeps every distance
    z5 = np.zeros((50, 5))
    z5[:, 0], z5[:, 3] = 3 * rng.normal(size=50), rng.normal(size=50)
    view, labels = latent_view(z5)
    d = lambda a: np.linalg.norm(a[:, None] - a[None], axis=-1)  # noqa: E731
    np.testing.assert_allclose(d(view), d(z5), atol=1e-9)
    assert "principal component 1" in labels[0] and "100%" not in labels[0]
    with pytest.raises(ValueError, match="d >= 2"):
        latent_view(np.zeros((5, 1)))


def test_latent_sweep_varies_the_chosen_dimensions_only():
    from aae.plotting import latent_sweep
    seen = []

    def decode(z):
        seen.append(np.asarray(z))
        return np.zeros((len(z), 784))
    latent_sweep(decode, n=4, lim=2.0, dims=(1, 3), latent_dim=5)
    z = seen[0]
    assert z.shape == (16, 5) and np.all(z[:, [0, 2, 4]] == 0)
    np.testing.assert_allclose(sorted(set(z[:, 1])), np.linspace(-2, 2, 4), rtol=1e-6)
    np.testing.assert_allclose(sorted(set(z[:, 3])), np.linspace(-2, 2, 4), rtol=1e-6)
    with pytest.raises(ValueError, match="two different latent dimensions in 0..4"):
        latent_sweep(decode, n=4, dims=(1, 1), latent_dim=5)
    with pytest.raises(ValueError, match="two different latent dimensions in 0..1"):
        latent_sweep(decode, n=4, dims=(0, 2))
