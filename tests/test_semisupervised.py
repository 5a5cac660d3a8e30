"""Semi-supervised AAE and AAE clustering (aae.semisupervised): the label draw, the cluster
scores, that each phase moves exactly its own weights, that the labelled loss falls, and that the
model trains on every installed backend."""
import json

import keras
import numpy as np
import pytest

from aae.semisupervised import (balanced_labelled_subset, build_semisupervised_aae,
                                classification_error, cluster_error, cluster_labels,
                                content_follows_y, semi_supervised_inputs, split_validation)
from test_backends import BACKENDS, needs, run_python


# -- labelled subset and validation split --------------------------------------------------------
def test_balanced_draw_counts_reproducible_and_disjoint_from_validation(mnist_dir):
    from aae.data import load_mnist

    (x, y), _ = load_mnist(mnist_dir)
    (x_fit, y_fit), (x_val, y_val) = split_validation(x, y, 10_000)
    assert len(x_fit) == 50_000 and len(x_val) == 10_000
    np.testing.assert_array_equal(x_val, x[-10_000:])
    for n_labels in (100, 1000):
        idx = balanced_labelled_subset(y_fit, n_labels, seed=3)
        assert len(idx) == n_labels == len(np.unique(idx))
        assert np.bincount(y_fit[idx], minlength=10).tolist() == [n_labels // 10] * 10
        assert idx.max() < 50_000  # indices into the fit part: never a validation image
        np.testing.assert_array_equal(idx, balanced_labelled_subset(y_fit, n_labels, seed=3))
        assert not np.array_equal(idx, balanced_labelled_subset(y_fit, n_labels, seed=4))
    # the images themselves are not validation images either (MNIST has no exact duplicates)
    picked = {x_fit[i].tobytes() for i in balanced_labelled_subset(y_fit, 100, seed=0)}
    assert not picked & {v.tobytes() for v in x_val}


def test_balanced_draw_rejects_bad_requests():
    y = np.repeat(np.arange(10), 5)
    with pytest.raises(ValueError, match="multiple of n_classes"):
        balanced_labelled_subset(y, 105)
    with pytest.raises(ValueError, match="class 0 has 5 examples"):
        balanced_labelled_subset(y, 100)
    with pytest.raises(ValueError, match="val_size"):
        split_validation(np.zeros((10, 2)), np.zeros(10), 10)


def test_semi_supervised_inputs_repeat_every_labelled_example_evenly():
    x_l, y_l = np.arange(7.0)[:, None] * np.ones((1, 3)), np.arange(7)
    x, y = semi_supervised_inputs(np.zeros((30, 3)), x_l, y_l, seed=0)
    assert x["x"].shape == (30, 3) and x["x_labelled"].shape == (30, 3) and y.shape == (30,)
    np.testing.assert_array_equal(x["x_labelled"][:, 0], y)          # images stay with their labels
    assert sorted(np.bincount(y, minlength=7)) == [4, 4, 4, 4, 4, 5, 5]  # rounds: 30 = 4 x 7 + 2


# -- scores --------------------------------------------------------------------------------------
def test_cluster_error_known_case():
    # 3 clusters over labels {0, 1}. Validation: cluster 0's most confident example is a 1,
    # cluster 1's a 0, cluster 2's a 1; but most examples won by cluster 2 are 0s.
    q_val = np.array([[0.9, 0.05, 0.05],   # label 1, most confident for cluster 0
                      [0.1, 0.8, 0.1],     # label 0, most confident for cluster 1
                      [0.1, 0.1, 0.8],     # label 1, most confident for cluster 2
                      [0.2, 0.1, 0.7],     # label 0, won by cluster 2
                      [0.2, 0.2, 0.6]])    # label 0, won by cluster 2
    y_val = np.array([1, 0, 1, 0, 0])
    assert cluster_labels(q_val, y_val).tolist() == [1, 0, 1]
    assert cluster_labels(q_val, y_val, "majority").tolist() == [1, 0, 0]
    q_test = np.eye(3)[[0, 0, 1, 2, 2, 2]]
    y_test = np.array([1, 0, 0, 1, 0, 0])
    # paper's rule: predictions 1,1,0,1,1,1 -> wrong on items 1, 4, 5
    assert cluster_error(q_val, y_val, q_test, y_test) == pytest.approx(3 / 6)
    # majority vote: predictions 1,1,0,0,0,0 -> wrong on items 1, 3
    assert cluster_error(q_val, y_val, q_test, y_test, "majority") == pytest.approx(2 / 6)
    assert classification_error(np.eye(3)[[0, 1, 2, 2]], [0, 1, 2, 0]) == 0.25
    with pytest.raises(ValueError, match="rule"):
        cluster_labels(q_val, y_val, "vote")
    with pytest.raises(ValueError, match="q_test"):
        cluster_error(q_val, y_val, q_test[:, :2], y_test)


# -- content follows y ---------------------------------------------------------------------------
class _FakeDecoder:
    """Draws class `drawn(y, z)` as a one-hot 'image'; the classifier reads the image back."""

    def __init__(self, drawn, n_classes=10):
        self.drawn, self.n_classes = drawn, n_classes

    def decode(self, y, z):
        return np.eye(10)[self.drawn(np.asarray(y), np.asarray(z))]


_READ = lambda images: np.asarray(images, float)  # noqa: E731 (a perfect classifier of the fake images)


def test_content_follows_y_constructed_decoders():
    z = np.random.default_rng(0).standard_normal((500, 3))
    z_digit = lambda z: (np.floor(np.abs(z[:, 0]) * 100) % 10).astype(int)  # noqa: E731 (a digit kept in z)
    follows = content_follows_y(_FakeDecoder(lambda y, z: y), z, _READ)
    assert follows["share"] == 1.0 and follows["per_class"] == [1.0] * 10
    ignores = content_follows_y(_FakeDecoder(lambda y, z: z_digit(z)), z, _READ)
    assert abs(ignores["share"] - 0.1) < 1e-12  # every style draws its own digit for each y: 1 in 10
    assert 0.05 < min(ignores["per_class"]) and max(ignores["per_class"]) < 0.16
    # classes 0-4 obeyed, 5-9 drawn from z: class d >= 5 scores the share of styles whose digit is d
    half = content_follows_y(_FakeDecoder(lambda y, z: np.where(y < 5, y, z_digit(z))), z, _READ)
    expected = [1.0] * 5 + [np.mean(z_digit(z) == d) for d in range(5, 10)]
    np.testing.assert_allclose(half["per_class"], expected)
    assert half["share"] == pytest.approx(np.mean(expected))
    # clusters: 16 classes that stand for digits labels[i]; a decoder drawing labels[y] scores 1
    labels = np.arange(16) % 10
    clusters = content_follows_y(_FakeDecoder(lambda y, z: labels[y], 16), z, _READ, labels)
    assert clusters["share"] == 1.0 and len(clusters["per_class"]) == 16
    assert content_follows_y(_FakeDecoder(lambda y, z: y % 10, 16), z, _READ, (labels + 1) % 10)["share"] == 0.0
    with pytest.raises(ValueError, match="one label per class"):
        content_follows_y(_FakeDecoder(lambda y, z: y), z, _READ, labels)
    with pytest.raises(ValueError, match="n_styles"):
        content_follows_y(_FakeDecoder(lambda y, z: y), z[:0], _READ)


# -- the model -------------------------------------------------------------------------------------
def _tiny(supervised=True, seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    return build_semisupervised_aae(latent_dim=2, n_classes=3, hidden=(16,), d_hidden=(8,),
                                    original_dim=12, seed=seed, supervised=supervised, **kwargs)


def _toy(n=60, seed=0):
    """Three prototypes of 12 pixels, noisy copies; labels = prototype."""
    rng = np.random.default_rng(seed)
    protos = (rng.random((3, 12)) > 0.5).astype("float32")
    y = np.arange(n) % 3
    return np.clip(protos[y] + 0.1 * rng.standard_normal((n, 12)), 0, 1).astype("float32"), y


def _weights(model, trainable_only=False):
    nets = {"encoder": model.encoder, "decoder": model.decoder,
            "cat_discriminator": model.cat_discriminator, "gauss_discriminator": model.gauss_discriminator}
    if trainable_only:
        return {k: [np.array(w) for w in m.trainable_weights] for k, m in nets.items()}
    return {k: [np.array(w) for w in m.get_weights()] for k, m in nets.items()}


_SGD = lambda: keras.optimizers.SGD(0.1)  # noqa: E731 (every phase: any non-zero gradient moves)
_ZERO = lambda: keras.optimizers.SGD(0.0)  # noqa: E731


@pytest.mark.parametrize("batch_norm", [False, True], ids=["plain", "batch_norm"])
@pytest.mark.parametrize("phase, moves", [
    ("reconstruction", {"encoder", "decoder"}),
    ("discriminator", {"cat_discriminator", "gauss_discriminator"}),
    ("generator", {"encoder"}),
    ("supervised", {"encoder"}),
])
def test_each_phase_updates_exactly_its_own_variables(phase, moves, batch_norm):
    model = _tiny(batch_norm=batch_norm)
    opts = {p: (_SGD() if p == phase else _ZERO()) for p in
            ("reconstruction", "discriminator", "generator", "supervised")}
    model.compile(ae_optimizer=opts["reconstruction"], d_optimizer=opts["discriminator"],
                  g_optimizer=opts["generator"], s_optimizer=opts["supervised"])
    x_toy, y_toy = _toy(20)
    x, y = semi_supervised_inputs(x_toy, x_toy[:6], y_toy[:6])
    before = _weights(model, trainable_only=batch_norm)  # batch norm's statistics move in every phase
    model.fit(x, y, batch_size=20, epochs=1, verbose=0, shuffle=False)
    after = _weights(model, trainable_only=batch_norm)
    for net in before:
        changed = any(not np.array_equal(b, a) for b, a in zip(before[net], after[net]))
        assert changed == (net in moves), f"{phase} phase: {net} changed={changed}"


def test_phase_variables_and_clustering_has_no_labelled_phase():
    model = _tiny()
    pv = model.phase_variables()
    assert set(pv) == {"reconstruction", "discriminator", "generator", "supervised"}
    enc = {id(v) for v in model.encoder.trainable_weights}
    style = {id(v) for v in model.encoder.get_layer("style").trainable_weights}
    assert {id(v) for v in pv["generator"]} == enc
    assert {id(v) for v in pv["supervised"]} == enc - style and len(style) == 2
    clustering = _tiny(supervised=False)
    assert "supervised" not in clustering.phase_variables()
    assert not any(t.startswith("supervised") for t in clustering.tracked)
    clustering.compile()
    x, _ = _toy(40)
    logs = clustering.fit(x, batch_size=20, epochs=1, verbose=0).history
    assert np.isfinite(logs["reconstruction_loss"][-1]) and "supervised_loss" not in logs
    with pytest.raises(ValueError, match="labelled batches"):
        model.compile()
        model.fit(x, batch_size=20, epochs=1, verbose=0)


def test_batch_norm_encoder_normalises_both_heads_and_keeps_style_out_of_the_labelled_phase():
    model = _tiny(batch_norm=True, input_dropout=0.2)
    names = [layer.name for layer in model.encoder.layers]
    assert {"input_dropout", "hidden1_bn", "class_logits_bn", "style_bn"} <= set(names)
    pv = model.phase_variables()
    style = {id(v) for n in ("style", "style_bn") for v in model.encoder.get_layer(n).trainable_weights}
    assert len(style) == 3  # the style kernel (no bias under batch norm) and its gamma, beta
    assert {id(v) for v in pv["supervised"]} == {id(v) for v in model.encoder.trainable_weights} - style
    # in training each head is normalised over the batch: (h - mean) / sqrt(var + epsilon) per unit
    x, _ = _toy(60)
    plain = _tiny(batch_norm=True)  # no input dropout: the same input reaches both calls below
    for head in ("class_logits", "style"):
        raw = np.array(keras.Model(plain.encoder.input, plain.encoder.get_layer(head).output)(x, training=True))
        eps = plain.encoder.get_layer(f"{head}_bn").epsilon
        out = plain.encoder(x, training=True)[0 if head == "class_logits" else 1]
        np.testing.assert_allclose(out, (raw - raw.mean(0)) / np.sqrt(raw.var(0) + eps), rtol=1e-3, atol=1e-4)
    # the moving statistics follow training, and inference uses them
    moving = np.array(model.encoder.get_layer("class_logits_bn").moving_variance)
    model.compile()
    x_l, y_l = x[:6], np.arange(6) % 3
    xs, ys = semi_supervised_inputs(x, x_l, y_l)
    model.fit(xs, ys, batch_size=20, epochs=2, verbose=0)
    assert not np.allclose(moving, model.encoder.get_layer("class_logits_bn").moving_variance)
    with pytest.raises(ValueError, match="input_dropout"):
        _tiny(input_dropout=1.0)


def test_labelled_cross_entropy_falls_and_classifies():
    model = _tiny(seed=1)
    model.compile(ae_optimizer=keras.optimizers.Adam(1e-2), s_optimizer=keras.optimizers.Adam(1e-2))
    x_toy, y_toy = _toy(90, seed=1)
    x, y = semi_supervised_inputs(x_toy, x_toy[:9], y_toy[:9], seed=1)
    logs = model.fit(x, y, batch_size=30, epochs=25, verbose=0).history
    ce = logs["supervised_loss"]
    assert ce[-1] < 0.5 * ce[0], ce
    assert classification_error(model.predict_proba(x_toy), y_toy) < 0.2
    q, z = model.encode(x_toy)
    np.testing.assert_allclose(q.sum(1), 1.0, rtol=1e-5)
    assert z.shape == (90, 2)
    assert model.decode([0, 1, 2], np.zeros((3, 2))).shape == (3, 12)


def test_builder_rejects_bad_settings():
    with pytest.raises(ValueError, match="n_classes must be at least 2"):
        build_semisupervised_aae(2, 1, (8,), (8,), 12)
    with pytest.raises(ValueError, match="hidden must be a non-empty list"):
        build_semisupervised_aae(2, 3, 8, (8,), 12)
    with pytest.raises(ValueError, match="input_noise"):
        build_semisupervised_aae(2, 3, (8,), (8,), 12, input_noise=-1.0)
    with pytest.raises(ValueError, match="cat_temperature must be a finite number > 0, got 0.0. None gives exact one-hot"):
        build_semisupervised_aae(2, 3, (8,), (8,), 12, cat_temperature=0.0)
    with pytest.raises(ValueError, match="cat_d_noise must be a finite number >= 0, got -0.1. It is a standard deviation"):
        build_semisupervised_aae(2, 3, (8,), (8,), 12, cat_d_noise=-0.1)


def test_relaxed_prior_is_the_concrete_distribution_and_the_default_is_exactly_one_hot():
    from keras import ops
    hard = ops.convert_to_numpy(_tiny()._cat_prior(2000))
    assert set(np.unique(hard)) == {0.0, 1.0} and np.all(hard.sum(1) == 1)
    tau = 0.5
    soft = ops.convert_to_numpy(_tiny(cat_temperature=tau)._cat_prior(40_000)).astype("float64")
    np.testing.assert_allclose(soft.sum(1), 1.0, atol=1e-5)
    assert soft.min() > 0  # (a row's max may round to 1.0 in float32)
    # Gumbel-max: the argmax is uniform over the 3 classes
    np.testing.assert_allclose(np.bincount(soft.argmax(1), minlength=3) / len(soft), 1 / 3, atol=0.01)
    # log(y_0 / y_1) = (g_0 - g_1) / tau with g_0 - g_1 ~ Logistic(0, 1), of variance pi^2 / 3
    ratio = np.log(soft[:, 0] / soft[:, 1])
    assert abs(ratio.mean()) < 0.05
    np.testing.assert_allclose(ratio.var(), np.pi ** 2 / 3 / tau ** 2, rtol=0.05)
    # colder is closer to one-hot
    cold = ops.convert_to_numpy(_tiny(cat_temperature=0.1)._cat_prior(5000))
    assert cold.max(1).mean() > soft.max(1).mean() + 0.1


def test_categorical_discriminator_noise_only_while_training():
    from keras import ops
    model = _tiny(cat_d_noise=0.3)
    q = np.full((500, 3), 1 / 3, "float32")
    plain = ops.convert_to_numpy(model.cat_discriminator(q, training=False))
    np.testing.assert_allclose(ops.convert_to_numpy(model._cat_d(q, False)), plain, rtol=1e-6)
    assert np.abs(ops.convert_to_numpy(model._cat_d(q, True)) - plain).mean() > 1e-4
    x, _ = _toy()
    clustering = _tiny(supervised=False, cat_temperature=0.3, cat_d_noise=0.3)
    clustering.compile()
    logs = clustering.fit(x, batch_size=20, epochs=2, verbose=0).history
    assert all(np.isfinite(v[-1]) for v in logs.values())


# -- every backend -------------------------------------------------------------------------------
TRAIN = """
import json, keras, numpy as np
from aae.runtime import compile_options
from aae.semisupervised import build_semisupervised_aae, semi_supervised_inputs, classification_error
keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
protos = (rng.random((3, 12)) > 0.5).astype("float32")
y = np.arange(90) % 3
x = np.clip(protos[y] + 0.1 * rng.standard_normal((90, 12)), 0, 1).astype("float32")
model = build_semisupervised_aae(latent_dim=2, n_classes=3, hidden=(16,), d_hidden=(8,),
                                 original_dim=12, seed=0)
model.compile(ae_optimizer=keras.optimizers.Adam(1e-2), s_optimizer=keras.optimizers.Adam(1e-2),
              **compile_options(1, "auto"))  # compiled on TF and JAX (eager JAX is slow), eager torch
xs, ys = semi_supervised_inputs(x, x[:9], y[:9], seed=0)
logs = model.fit(xs, ys, batch_size=30, epochs=15, verbose=0).history
print(json.dumps({"ce": logs["supervised_loss"], "error": classification_error(model.predict_proba(x), y),
                  "backend": keras.backend.backend()}))
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_trains_on_each_backend(backend):
    needs(backend)
    out = json.loads(run_python(TRAIN, backend).strip().splitlines()[-1])
    assert out["backend"] == backend
    assert all(np.isfinite(out["ce"])) and out["ce"][-1] < 0.5 * out["ce"][0], out["ce"]
    assert out["error"] < 0.3


# -- clustering on MNIST -------------------------------------------------------------------------
def _cluster_fit(x, batch_norm, seed=0):
    from aae.phases import adam

    keras.utils.set_random_seed(seed)
    model = build_semisupervised_aae(5, 16, (256, 256), (256, 256), seed=seed, supervised=False,
                                     batch_norm=batch_norm)
    model.compile(ae_optimizer=adam(1e-3), d_optimizer=adam(1e-3, beta_1=0.5), g_optimizer=adam(1e-3, beta_1=0.5))
    model.fit(x, batch_size=100, epochs=4, verbose=0)
    return model


def test_short_clustering_fit_uses_most_clusters_with_batch_norm_and_collapses_without(mnist_dir):
    from aae.data import load_mnist

    (x, y), _ = load_mnist(mnist_dir)
    x_fit, x_val, y_val = x[:4000], x[-2000:], y[-2000:]
    used = {}
    for batch_norm in (False, True):
        q = _cluster_fit(x_fit, batch_norm).predict_proba(x_val)
        used[batch_norm] = len(np.unique(q.argmax(1)))
        if batch_norm:  # and the clusters mean something: far better than one label for all (90 % error)
            assert cluster_error(q, y_val, q, y_val, "majority") < 0.6
    assert used[True] >= 14 and used[False] <= 4, used
