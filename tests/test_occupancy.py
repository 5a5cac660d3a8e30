"""Occupancy measures on synthetic decoders whose answers are known in closed form."""
import math

import keras
import numpy as np
import pytest
from scipy.stats import chi2, entropy, norm

from aae import occupancy as occ
from aae.occupancy import UNCLEAR
from aae import plotting
from aae import priors
from aae.judge import digit_classifier, train_classifier
from aae.plotting import save_figure

# Measured: 0.9625, 0.954, 0.959 for seeds 0-2 (12,000 images, 2 epochs); a broken judge gets ~0.1.
JUDGE_SMALL_ACCURACY = 0.94

# Ten disjoint templates: digit k lights pixels [78k, 78k + 78).
TEMPLATES = np.zeros((10, 784), "float32")
for _k in range(10):
    TEMPLATES[_k, 78 * _k:78 * _k + 78] = 1.0

# A grid whose cell edges fall on multiples of 0.05 (edges at 0, +-0.5, ...): 180 cells of
# width 0.05 centred from -4.475 to 4.475, so half-planes and bands are measured exactly.
LIM, N = 4.475, 180


def judge(images):
    """'Classifier' that recognises templates exactly: probabilities = template overlap shares."""
    overlap = np.asarray(images) @ TEMPLATES.T + 1e-12
    return overlap / overlap.sum(1, keepdims=True)


def half_plane(z):
    """z_1 > 0 decodes to a 3, z_1 < 0 to a 7."""
    return np.where(np.asarray(z)[:, :1] > 0, TEMPLATES[3], TEMPLATES[7])


def with_band(z):
    """Like `half_plane`, but |z_1| < 0.5 decodes to a 50/50 blend of 3 and 7 (unclear)."""
    images = half_plane(z)
    band = np.abs(np.asarray(z)[:, 0]) < 0.5
    images[band] = 0.5 * (TEMPLATES[3] + TEMPLATES[7])
    return images


def sectors(bounds, digits):
    """Decoder: angle in [bounds[i], bounds[i+1]) (radians, from 0 to 2 pi) decodes to digits[i]."""
    def decode(z):
        angle = np.mod(np.arctan2(z[:, 1], z[:, 0]), 2 * np.pi)
        return TEMPLATES[np.asarray(digits)[np.searchsorted(bounds, angle, side="right") - 1]]
    return decode


def test_half_plane_splits_prior_mass_and_area_evenly():
    grid = occ.classify_grid(half_plane, judge, lim=LIM, n=N, threshold=0.9)
    assert grid.labels.shape == (N, N) and set(np.unique(grid.labels)) == {3, 7}
    expected = np.zeros(11)
    expected[[3, 7]] = 0.5
    np.testing.assert_allclose(occ.prior_mass_shares(grid), expected, atol=1e-12)
    np.testing.assert_allclose(occ.area_shares(grid), expected, atol=1e-12)
    np.testing.assert_allclose(occ.sweep_shares(grid), expected, atol=1e-12)
    # the grid holds all but the N(0, I) mass beyond |z_i| = 4.5
    assert occ.prior_coverage(grid) == pytest.approx((2 * norm.cdf(4.5) - 1) ** 2, abs=1e-12)


def test_grid_layout_matches_latent_grid():
    grid = occ.classify_grid(half_plane, judge, lim=3.0, n=7, threshold=0.9)
    from aae.plotting import latent_grid

    codes, xs, ys = latent_grid(n=7, lim=3.0)
    np.testing.assert_allclose(grid.codes, codes, atol=1e-6)
    assert grid.labels[0, -1] == 3 and grid.labels[-1, 0] == 7  # top right z_1 > 0
    assert grid.extent == pytest.approx((-3.5, 3.5, -3.5, 3.5))


def test_sectors_take_their_angle_over_two_pi():
    # 1.8 pi avoids the diagonal, whose cells the sector edge would cut through their centres
    bounds = np.array([0, np.pi, 1.5 * np.pi, 1.8 * np.pi])
    grid = occ.classify_grid(sectors(bounds, [0, 1, 2, 6]), judge, lim=LIM, n=N, threshold=0.9)
    mass = occ.prior_mass_shares(grid)
    np.testing.assert_allclose(mass[[0, 1, 2, 6]], [0.5, 0.25, 0.15, 0.1], atol=1e-3)
    assert mass[[3, 4, 5, 7, 8, 9, UNCLEAR]].sum() == 0
    # the 95% disc is isotropic too, so its area splits the same way (up to its pixel edge)
    area = occ.area_shares(grid)
    np.testing.assert_allclose(area[[0, 1, 2, 6]], [0.5, 0.25, 0.15, 0.1], atol=3e-3)


def test_unclear_band_gets_its_own_share():
    grid = occ.classify_grid(with_band, judge, lim=LIM, n=N, threshold=0.9)
    band = 2 * norm.cdf(0.5) - 1                       # N(0, 1) mass of |z_1| < 0.5 = 0.3829
    mass = occ.prior_mass_shares(grid)
    assert mass[UNCLEAR] == pytest.approx(band, abs=1e-4)
    assert mass[3] == pytest.approx((1 - band) / 2, abs=1e-4)
    assert mass[7] == pytest.approx((1 - band) / 2, abs=1e-4)
    assert np.all(grid.confidence[grid.labels == UNCLEAR] == pytest.approx(0.5))
    # the top guess is kept, so a lower threshold turns the band back into digits
    assert (grid.with_threshold(0.4).labels != UNCLEAR).all()
    assert grid.with_threshold(0.4).threshold == 0.4
    # area of the band inside the disc of radius r: 2 * (r^2 asin(a/r) + a sqrt(r^2 - a^2))
    r, a = math.sqrt(chi2.ppf(0.95, 2)), 0.5
    band_area = 2 * (r * r * math.asin(a / r) + a * math.sqrt(r * r - a * a)) / (math.pi * r * r)
    assert occ.area_shares(grid)[UNCLEAR] == pytest.approx(band_area, abs=5e-3)  # 0.2574


def test_balance_kl_matches_scipy():
    counts = {d: 100 + 10 * d for d in range(10)}
    q = np.array([counts[d] for d in range(10)], float)
    q /= q.sum()
    shares = np.r_[np.full(10, 0.06), 0.25]            # unclear 0.25, renormalised away
    shares[0] = 0.21                                   # zero takes 0.21 of 0.75 clear mass
    p = shares[:10] / shares[:10].sum()
    out = occ.balance(shares, counts)
    assert out["kl_nats"] == pytest.approx(entropy(p, q), rel=1e-12)
    assert out["kl_nats"] == pytest.approx(float(np.sum(p * np.log(p / q))), rel=1e-12)
    assert out["entropy_ratio"] == pytest.approx(entropy(p) / entropy(q), rel=1e-12)
    assert out["over_representation"][0] == pytest.approx(0.28 / (100 / 1450), rel=1e-12)  # 4.06
    assert out["clear_shares"].sum() == pytest.approx(1.0)
    even = occ.balance(np.r_[q, 0.0], np.array([counts[d] for d in range(10)]))
    assert even["kl_nats"] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(even["over_representation"], 1.0)


def test_most_and_least_served_skip_a_digit_absent_from_training():
    counts = np.r_[np.full(7, 6000), 0, 0, 6000]           # no 7 and no 8 among the training digits
    shares = np.r_[0.3, np.full(3, 0.1), 0.0, 0.1, 0.1, 0.05, 0.0, 0.15]  # sums to 1; 4 gets no mass, 7 some, 8 none
    bal = occ.balance(shares, counts)
    ratio = bal["over_representation"]
    assert np.isinf(ratio[7]) and np.isnan(ratio[8])       # no fair share: neither the most nor the least served
    assert bal["most_over_represented"] == 0 and bal["least_served"] == 4
    assert ratio[0] == pytest.approx(0.3 / (1 / 8)) and ratio[4] == 0.0
    assert occ.balance(np.zeros(10), counts)["least_served"] is None


def test_all_unclear_gives_undefined_balance_not_an_error(tmp_path):
    blur = lambda z: np.tile(TEMPLATES.mean(0), (len(z), 1))  # noqa: E731  every digit at 0.1
    grid = occ.classify_grid(blur, judge, lim=LIM, n=20, threshold=0.5)
    assert (grid.labels == UNCLEAR).all()
    assert np.isnan(occ.balance(occ.prior_mass_shares(grid), np.full(10, 6000))["kl_nats"])
    summary = occ.occupancy_summary(grid, np.full(10, 6000))
    assert summary["kl_nats"] is None and summary["most_over_represented"] is None and summary["least_served"] is None
    assert summary["over_representation"]["0"] is None
    assert summary["prior_mass_share"]["unclear"] == pytest.approx(1.0)
    fig = plotting.shares_figure({"blur": summary}, np.full(10, 6000))
    assert fig.axes[0].get_title().startswith("blur: no decoded image is a clear digit")
    save_figure(fig, "blur", tmp_path)


def test_own_region_share_of_encoded_codes():
    grid = occ.classify_grid(with_band, judge, lim=LIM, n=N, threshold=0.9)
    codes = np.array([[1.0, 0.0], [2.0, -3.0],            # two 3s in the 3 region
                      [-1.0, 1.0], [1.0, 1.0],            # a 7 in its region, one in the 3 region
                      [0.1, 0.0], [-2.0, 9.0],            # a 7 in the unclear band, one off the grid
                      [-9.0, 0.0]])                       # a 1 off the grid, on the 7 side
    labels = np.array([3, 3, 7, 7, 7, 7, 1])
    own = occ.own_region_shares(grid, codes, labels)
    assert own[3] == 1.0 and own[7] == pytest.approx(0.5) and own[1] == 0.0
    assert np.isnan(own[0])                               # no 0 among the codes
    np.testing.assert_array_equal(grid.inside(codes), [1, 1, 1, 1, 1, 0, 0])
    summary = occ.occupancy_summary(grid, np.full(10, 6000), codes, labels)
    assert summary["own_region_share"]["7"] == pytest.approx(0.5)
    assert summary["own_region_share"]["0"] is None
    assert summary["own_region_share_all"] == pytest.approx(4 / 7)
    assert summary["prior_mass_share"]["unclear"] == pytest.approx(2 * norm.cdf(0.5) - 1, abs=1e-4)
    assert summary["most_over_represented"] in (3, 7)
    assert summary["over_representation"]["3"] == pytest.approx(5.0, abs=1e-6)  # 0.5 / 0.1


def test_monte_carlo_prior_and_its_density_region():
    """A shifted prior N((1, 0), I): the 3 side holds Phi(1) of its mass."""
    samples = np.random.default_rng(0).normal(size=(200_000, 2)) + [1.0, 0.0]
    lim = occ.covering_lim(samples, minimum=4.0)
    assert lim == 4.5                          # |z_1| < 1 + 3.09 for 99.9%, rounded up to 0.5
    grid = occ.classify_grid(half_plane, judge, lim=lim, n=N, threshold=0.9)
    mass = occ.prior_mass_shares(grid, samples)
    assert mass[3] == pytest.approx(norm.cdf(1.0), abs=4e-3)   # 0.8413
    assert mass[7] == pytest.approx(norm.cdf(-1.0), abs=4e-3)
    assert occ.prior_coverage(grid, samples) > 0.999
    # its 95% highest-density region is the disc of radius r around (1, 0); the part with
    # z_1 < 0 is a circular segment at distance 1 from the centre
    log_density = lambda z: -0.5 * ((np.asarray(z) - [1.0, 0.0]) ** 2).sum(1)  # noqa: E731
    region = occ.density_region(grid, samples, log_density)
    r = math.sqrt(chi2.ppf(0.95, 2))
    segment = (r * r * math.acos(1 / r) - math.sqrt(r * r - 1)) / (math.pi * r * r)  # 0.2414
    assert occ.area_shares(grid, region)[7] == pytest.approx(segment, abs=1e-2)
    # without a density, a KDE of the samples finds nearly the same region
    kde_region = occ.density_region(grid, samples[:3000], None)
    assert (region & kde_region).sum() / (region | kde_region).sum() > 0.9


def test_priors_from_aae_priors():
    assert priors.GaussianPrior().is_standard_normal and occ.prior_draws(None, 10) is None
    assert not priors.GaussianPrior(scale=2.0).is_standard_normal
    assert not priors.GaussianPrior(dim=3).is_standard_normal
    assert occ.prior_draws(priors.GaussianPrior(), 10) is None
    assert occ.prior_draws(priors.GaussianPrior(scale=2.0), 10).shape == (10, 2)
    mixture = priors.MixturePrior(n_components=10, radius=4.0, std=0.5)
    draws = occ.prior_draws(mixture, 20_000, seed=1)
    assert draws.shape == (20_000, 2)
    # the mixture's log density integrates to 1 and matches a Gaussian at one component
    xs = np.linspace(-7, 7, 701)
    z = np.stack(np.meshgrid(xs, xs), -1).reshape(-1, 2)
    log_p = mixture.log_density
    assert np.exp(log_p(z)).sum() * (xs[1] - xs[0]) ** 2 == pytest.approx(1.0, abs=1e-3)
    assert log_p(mixture.means[:1])[0] == pytest.approx(
        -math.log(10 * 2 * math.pi * 0.25), abs=1e-3)      # other components are far away
    # ten equal components on a circle, one sector each: every digit gets a tenth
    bounds = 2 * np.pi * (np.arange(10) - 0.5) / 10
    bounds = np.mod(bounds, 2 * np.pi)
    order = np.argsort(bounds)
    grid = occ.classify_grid(sectors(bounds[order], np.arange(10)[order]), judge,
                             lim=occ.covering_lim(draws), n=120, threshold=0.9)
    np.testing.assert_allclose(occ.prior_mass_shares(grid, draws)[:10], 0.1, atol=0.01)
    region = occ.prior_region(grid, mixture, draws)
    np.testing.assert_allclose(occ.area_shares(grid, region)[:10], 0.1, atol=0.01)


def test_keras_decoder_goes_through_logits():
    """A Keras decoder returning logits: +20 z_1 on the 3 pixels, -20 z_1 on the 7 pixels."""
    kernel = np.zeros((2, 784), "float32")
    kernel[0] = 20 * (TEMPLATES[3] - TEMPLATES[7])
    bias = np.full(784, -20.0, "float32")
    bias[TEMPLATES[3] + TEMPLATES[7] > 0] = 0.0
    z = keras.Input((2,))
    dense = keras.layers.Dense(784)
    decoder = keras.Model(z, dense(z))
    dense.set_weights([kernel, bias])
    grid = occ.classify_grid(decoder, judge, lim=LIM, n=40, threshold=0.8, batch_size=300)
    xs = np.broadcast_to(grid.xs, grid.labels.shape)
    assert (grid.labels[xs > 0.5] == 3).all() and (grid.labels[xs < -0.5] == 7).all()
    assert occ.prior_mass_shares(grid)[[3, 7]] == pytest.approx([0.5, 0.5], abs=1e-9)


def test_digit_classifier_shapes():
    model = digit_classifier()
    probs = model(np.zeros((3, 784), "float32"))
    assert tuple(probs.shape) == (3, 10)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(probs).sum(1), 1.0, rtol=1e-5)
    grid = occ.classify_grid(half_plane, model, lim=2.0, n=4, threshold=0.5)
    assert grid.labels.shape == (4, 4)


@pytest.mark.parametrize("threshold", [0, 1, 1.5, -0.1, True])
def test_rejects_threshold_outside_unit_interval(threshold):
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        occ.classify_grid(half_plane, judge, n=10, threshold=threshold)


@pytest.mark.parametrize("n", [1, 0, 2.5, True])
def test_rejects_tiny_grid(n):
    with pytest.raises(ValueError, match=r"grid size n must be an integer >= 2"):
        occ.classify_grid(half_plane, judge, n=n)


def test_rejects_bad_inputs():
    with pytest.raises(ValueError, match="probabilities .* not logits"):
        occ.classify_grid(half_plane, lambda x: 5 * judge(x), n=4)
    with pytest.raises(ValueError, match=r"shape \(16, 10\)"):
        occ.classify_grid(half_plane, lambda x: judge(x)[:, :9], n=4)
    with pytest.raises(ValueError, match="lim must be a positive number"):
        occ.classify_grid(half_plane, judge, lim=-1.0, n=4)
    small = occ.classify_grid(half_plane, judge, lim=2.0, n=20)
    with pytest.raises(ValueError, match="widen `lim`"):
        occ.area_shares(small)                            # the 95% disc (r = 2.45) overflows
    with pytest.raises(ValueError, match=r"shape \(m, 2\)"):
        occ.prior_mass_shares(small, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="10 non-negative digit counts"):
        occ.balance(np.full(11, 0.1), [1, 2, 3])


def test_figures(tmp_path):
    grid = occ.classify_grid(with_band, judge, lim=LIM, n=60, threshold=0.9)
    codes = np.random.default_rng(0).normal(size=(200, 2))
    labels = np.where(codes[:, 0] > 0, 3, 7)
    fig = plotting.occupancy_map(grid, codes=codes, labels=labels, region=2.45, title="synthetic")
    ax = fig.axes[0]
    np.testing.assert_array_equal(ax.images[0].get_array(), grid.labels)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:10] == [str(d) for d in range(10)] and legend[10].startswith("unclear")
    cmap = ax.images[0].get_cmap()
    assert cmap(ax.images[0].norm(UNCLEAR))[:3] == pytest.approx((0.88, 0.88, 0.88), abs=0.01)
    assert cmap(ax.images[0].norm(3))[:3] == pytest.approx(plotting.DIGIT_COLORS[3])
    save_figure(fig, "map", tmp_path)
    save_figure(plotting.occupancy_map(grid, region=occ.normal_region(grid)), "map_mask", tmp_path)
    summary = occ.occupancy_summary(grid, np.full(10, 6000))
    fig = plotting.shares_figure({"a": summary, "b": summary}, np.full(10, 6000))
    assert len(fig.axes) == 2
    ax = fig.axes[1]
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(d) for d in range(10)]
    expected = f"unclear, left out: {summary['prior_mass_share']['unclear']:.0%} of the prior mass"
    assert expected in ax.get_title() and "zero x0.00" in ax.get_title()
    # clear shares: the 3 and the 7 each hold half of the clear prior mass; 4 series x 10 bars
    heights = np.array([p.get_height() for p in ax.patches]).reshape(4, 10)
    np.testing.assert_allclose(heights[:, [3, 7]][1:], 0.5, atol=1e-9)
    path = save_figure(fig, "shares", tmp_path)
    assert path.read_bytes()[:4] == b"\x89PNG"
    raw = plotting.shares_figure({"a": summary}, np.full(10, 6000), clear=False)
    assert [t.get_text() for t in raw.axes[0].get_xticklabels()][-1] == "unclear"


def test_judge_learns_digits_from_a_fifth_of_mnist(mnist_dir):
    """Notebook 05 trusts the judge; here it is trained on 12,000 images for 2 epochs (about
    10 s) and must already tell digits apart on 2,000 test images it never saw."""
    from aae.data import load_mnist

    (x_train, y_train), (x_test, y_test) = load_mnist(mnist_dir, train_size=12_000, test_size=2000)
    _, accuracy = train_classifier(x_train, y_train, x_test, y_test, epochs=2, seed=0)
    assert accuracy >= JUDGE_SMALL_ACCURACY


@pytest.mark.slow
def test_classifier_reaches_99_percent(mnist_dir):
    from aae.data import load_mnist

    (x_train, y_train), (x_test, y_test) = load_mnist(mnist_dir)
    _, accuracy = train_classifier(x_train, y_train, x_test, y_test, epochs=3, seed=0)
    assert accuracy >= 0.99
