"""Tests for the Parzen-window log-likelihood in aae.metrics against a direct computation."""
import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from aae.metrics import mean_and_stderr, parzen_log_likelihood, select_parzen_sigma


def direct(x, samples, sigma):
    """Mean of isotropic Gaussian densities, straight from the definition (scipy)."""
    logpdf = np.stack([multivariate_normal(mean=s, cov=sigma ** 2).logpdf(x) for s in samples], 1)
    return logsumexp(logpdf, axis=1) - np.log(len(samples))


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.uniform(size=(40, 30)), rng.uniform(size=(60, 30))


@pytest.mark.parametrize("sigma", [0.1, 0.3, 1.0])
def test_matches_direct(data, sigma):
    x, s = data
    np.testing.assert_allclose(parzen_log_likelihood(x, s, sigma), direct(x, s, sigma),
                               rtol=0, atol=1e-3)


def test_mnist_sized_values(data):
    # 784 pixels, sigma 0.2: exponents in the thousands still give exact values (no underflow).
    rng = np.random.default_rng(1)
    x, s = rng.uniform(size=(20, 784)), rng.uniform(size=(30, 784))
    d2 = ((x[:, None] - s[None]) ** 2).sum(-1)
    ref = logsumexp(-d2 / 0.08, axis=1) - np.log(30) - 392 * np.log(2 * np.pi * 0.04)
    assert ref.max() < -600  # far beyond float64 exp underflow if done naively
    np.testing.assert_allclose(parzen_log_likelihood(x, s, 0.2), ref, atol=1e-3)


def test_chunking_invariance_and_sigma_vector(data):
    x, s = data
    sigmas = [0.2, 0.5]
    full = parzen_log_likelihood(x, s, sigmas, batch_size=1000, sample_batch_size=1000)
    assert full.shape == (40, 2)
    for b, sb in [(1, 1), (7, 11), (40, 59)]:
        np.testing.assert_allclose(parzen_log_likelihood(x, s, sigmas, batch_size=b,
                                                         sample_batch_size=sb), full, atol=1e-4)  # float32 matmul
    np.testing.assert_allclose(full[:, 1], parzen_log_likelihood(x, s, 0.5), atol=1e-4)


def test_select_sigma_peaks_near_truth():
    # Samples and validation points from the same N(0, 0.5^2 I) in 2-D: with 20k samples the
    # best window is small but clearly inside the grid, and it beats both ends.
    rng = np.random.default_rng(2)
    s, xv = 0.5 * rng.standard_normal((20_000, 2)), 0.5 * rng.standard_normal((2000, 2))
    sigmas = np.array([0.01, 0.03, 0.1, 0.3, 1.0])
    best, scores = select_parzen_sigma(xv, s, sigmas)
    assert best in (0.03, 0.1)
    assert scores.argmax() == list(sigmas).index(best)
    true_ll = -np.log(2 * np.pi * 0.25) - 1.0  # E log N(x; 0, 0.25 I) in 2-D
    assert abs(scores.max() - true_ll) < 0.1


def test_mean_and_stderr():
    m, se = mean_and_stderr([1.0, 2.0, 3.0, 4.0])
    assert m == 2.5 and se == pytest.approx(np.std([1, 2, 3, 4], ddof=1) / 2)
    with pytest.raises(ValueError, match="at least 2"):
        mean_and_stderr([1.0])


def test_bad_input():
    with pytest.raises(ValueError, match="sigma must be a number > 0"):
        parzen_log_likelihood(np.zeros((2, 3)), np.zeros((2, 3)), 0.0)
    with pytest.raises(ValueError, match="flatten images"):
        parzen_log_likelihood(np.zeros((2, 28, 28)), np.zeros((2, 784)), 0.2)
