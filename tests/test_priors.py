"""Tests for aae.priors: sample moments, component placement, labels, in-graph sampling."""
import keras
import numpy as np
import pytest
from keras import ops

from aae.priors import GaussianPrior, MixturePrior, SwissRollPrior


def test_gaussian_moments():
    z = GaussianPrior(dim=3, scale=2.0).sample(200_000, seed=0)
    assert z.shape == (200_000, 3) and z.dtype == np.float32
    np.testing.assert_allclose(z.mean(0), 0.0, atol=0.02)
    np.testing.assert_allclose(z.std(0), 2.0, atol=0.02)
    assert abs(np.corrcoef(z.T)[0, 1]) < 0.01


def test_gaussian_seed_and_generator():
    p = GaussianPrior(4)
    np.testing.assert_array_equal(p.sample(5, 1), p.sample(5, 1))
    assert not np.array_equal(p.sample(5, 1), p.sample(5, 2))
    rng = np.random.default_rng(3)
    assert not np.array_equal(p.sample(5, rng), p.sample(5, rng))  # a Generator advances


def test_mixture_components_on_circle():
    p = MixturePrior(n_components=10, radius=4.0, std=0.3)
    np.testing.assert_allclose(np.linalg.norm(p.means, axis=1), 4.0, rtol=1e-6)
    np.testing.assert_allclose(p.means[0], [4.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(p.means[5], [-4.0, 0.0], atol=1e-5)
    z, k = p.sample(100_000, seed=0, return_labels=True)
    assert z.shape == (100_000, 2) and z.dtype == np.float32
    np.testing.assert_allclose(np.bincount(k) / len(k), 0.1, atol=0.01)  # components uniform
    for c in range(10):
        np.testing.assert_allclose(z[k == c].mean(0), p.means[c], atol=0.02)
        np.testing.assert_allclose(z[k == c].std(0), 0.3, atol=0.02)


def test_mixture_labels_pick_component():
    p = MixturePrior(radius=4.0, std=0.1)
    labels = np.repeat(np.arange(10), 500)
    z, k = p.sample(len(labels), seed=1, labels=labels, return_labels=True)
    np.testing.assert_array_equal(k, labels)
    nearest = np.argmin(((z[:, None] - p.means[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(nearest, labels)


def test_swiss_roll_shape_and_segments():
    p = SwissRollPrior(radius=4.0, turns=1.5, noise=0.05)
    z, seg = p.sample(50_000, seed=0, return_labels=True)
    r = np.linalg.norm(z, axis=1)
    assert r.max() < 4.0 + 5 * 0.05
    np.testing.assert_allclose(np.bincount(seg) / len(seg), 0.1, atol=0.01)
    # Segment k covers u in [k/10, (k+1)/10), so radius 4 sqrt(u) grows with the segment.
    med = [np.median(r[seg == k]) for k in range(10)]
    assert np.all(np.diff(med) > 0)
    np.testing.assert_allclose(med[9], 4.0 * np.sqrt(0.95), atol=0.05)
    z9 = p.sample(1000, seed=2, labels=np.full(1000, 9))
    assert np.linalg.norm(z9, axis=1).min() > 4.0 * np.sqrt(0.9) - 0.25


def test_sample_tensor_matches_numpy_moments():
    gen = keras.random.SeedGenerator(0)
    z = ops.convert_to_numpy(GaussianPrior(2, scale=0.5).sample_tensor(50_000, gen))
    np.testing.assert_allclose(z.std(0), 0.5, atol=0.01)
    p = MixturePrior(std=0.2)
    labels = np.repeat(np.arange(10), 100).astype("int32")
    z = ops.convert_to_numpy(p.sample_tensor(1000, gen, labels=labels))
    for c in range(10):
        np.testing.assert_allclose(z[labels == c].mean(0), p.means[c], atol=0.06)
    s = SwissRollPrior(noise=0.01)
    zt = ops.convert_to_numpy(s.sample_tensor(1000, gen, labels=np.full(1000, 9, "int32")))
    assert np.linalg.norm(zt, axis=1).min() > 4.0 * np.sqrt(0.9) - 0.05


@pytest.mark.parametrize("make, message", [
    (lambda: GaussianPrior(dim=0), "dim must be an integer >= 1"),
    (lambda: GaussianPrior(dim=2, scale=0), "scale must be a finite number > 0"),
    (lambda: GaussianPrior(dim=2.5), "dim must be an integer >= 1"),
    (lambda: MixturePrior(std=-1), "std must be a finite number > 0"),
    (lambda: MixturePrior(radius=float("nan")), "radius must be a finite number > 0"),
    (lambda: MixturePrior(n_components=0), "n_components must be an integer >= 1"),
    (lambda: SwissRollPrior(turns=0), "turns must be a finite number > 0"),
])
def test_bad_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_labels():
    p = MixturePrior()
    with pytest.raises(ValueError, match=r"labels must lie in 0..9"):
        p.sample(2, labels=np.array([0, 10]))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        p.sample(3, labels=np.array([0, 1]))
    with pytest.raises(ValueError, match="n .* must be an integer >= 0"):
        p.sample(-1)
