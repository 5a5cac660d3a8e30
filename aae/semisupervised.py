"""Semi-supervised adversarial autoencoder and unsupervised clustering (Makhzani et al. 2015,
sections 5 and 6), used by notebook 06.

The encoder has two heads: a categorical code y = softmax over `n_classes` (the digit, or the
cluster) and a continuous style code z. The decoder reconstructs x from concat[y, z]. Two
discriminators regularise the heads: one tells one-hot samples of Cat(n_classes) from q(y|x),
the other tells N(0, I) samples from z. Every mini-batch runs, inside one compiled step:

1. reconstruction: encoder + decoder minimise BCE summed over pixels (nats per image);
2. regularisation: both discriminators (prior samples = 1, codes = 0), then the encoder as the
   generator against both;
3. semi-supervised (only when labelled data are given): cross-entropy of q(y|x) on a mini-batch
   of labelled examples, updating the encoder.

Labelled batches go through `fit` beside the unlabelled ones: `semi_supervised_inputs` repeats
the few labelled examples to the length of the unlabelled set, and `fit(x, y)` then gets
x = {"x": unlabelled images, "x_labelled": labelled images} and y = their labels; Keras's
shuffle re-pairs them every epoch. Clustering (no labelled phase) is `fit(x_unlabelled)`.
The phases are written once with `keras.ops`; `aae.phases` runs them on every backend.
"""
from __future__ import annotations

import numpy as np
import keras
from keras import layers, ops

from .checks import non_negative, positive
from .checks import positive_int as check_positive_int
from .losses import bce_sum_from_logits
from .models import batched, decode_batched, dense_stack
from .phases import PhasedModel

__all__ = ["SemiSupervisedAAE", "ssaae_encoder", "ssaae_decoder", "ssaae_discriminator",
           "build_semisupervised_aae", "split_validation", "balanced_labelled_subset",
           "semi_supervised_inputs", "classification_error", "cluster_labels", "cluster_error",
           "style_leak", "content_follows_y", "ErrorHistory"]


def _check_hidden(name, hidden):
    if isinstance(hidden, int) or not hasattr(hidden, "__iter__") or len(tuple(hidden)) == 0:
        raise ValueError(f"{name} must be a non-empty list of layer widths like (1000, 1000), "
                         f"got {hidden!r}.")
    return tuple(check_positive_int(f"{name} width", int(h) if isinstance(h, np.integer) else h)
                 for h in hidden)


def _init(seed, i):
    # A small Gaussian as in the paper; one stream per layer from the builder's seed.
    return keras.initializers.RandomNormal(stddev=0.01, seed=None if seed is None else seed + i)


def ssaae_encoder(latent_dim=10, n_classes=10, hidden=(1000, 1000), original_dim=784, seed=None,
                  dropout=0.0, batch_norm=False, input_dropout=0.0, name="encoder"):
    """Encoder x (n, 784) -> [class logits (n, n_classes), style z (n, latent_dim)], ReLU layers.

    q(y|x) = softmax(class logits). Both heads are float32 (mixed precision keeps them exact).
    `dropout` > 0: dropout of that rate after each hidden layer, in every training phase.
    `batch_norm`: batch normalisation after every Dense layer of the encoder, the two heads
    included (Dense -> BatchNorm -> ReLU in the hidden layers; the class logits and z are the
    normalised outputs), the setting the AAE paper's clustering experiments are recalled to need:
    normalised over a batch, each cluster's logit has mean beta and spread gamma whatever the
    weights, which keeps a cluster from dying. `input_dropout` > 0: dropout on the input image.
    """
    check_positive_int("latent_dim", latent_dim)
    if check_positive_int("n_classes", n_classes) < 2:
        raise ValueError(f"n_classes must be at least 2 (a categorical code), got {n_classes}.")
    if not (isinstance(input_dropout, (int, float)) and 0 <= input_dropout < 1):
        raise ValueError(f"input_dropout is a rate in [0, 1), got {input_dropout!r}.")
    x = keras.Input((check_positive_int("original_dim", original_dim),), name="x")
    h = x
    if input_dropout:
        h = layers.Dropout(input_dropout, seed=None if seed is None else seed + 99, name="input_dropout")(h)
    widths = _check_hidden("hidden", hidden)
    if batch_norm:
        for i, units in enumerate(widths):
            init = keras.initializers.HeNormal(seed=None if seed is None else seed + i)
            h = layers.Dense(units, kernel_initializer=init, use_bias=False, name=f"hidden{i + 1}")(h)
            h = layers.Activation("relu", name=f"hidden{i + 1}_relu")(
                layers.BatchNormalization(name=f"hidden{i + 1}_bn")(h))
            if dropout:
                h = layers.Dropout(dropout, seed=None if seed is None else seed + 100 + i,
                                   name=f"hidden{i + 1}_dropout")(h)
    else:
        h = dense_stack(h, widths, kernel_initializer="he_normal", seed=seed, dropout=dropout)
    logits = layers.Dense(n_classes, dtype="float32", kernel_initializer=_init(seed, 100),
                          use_bias=not batch_norm, name="class_logits")(h)
    z = layers.Dense(latent_dim, dtype="float32", kernel_initializer=_init(seed, 101),
                     use_bias=not batch_norm, name="style")(h)
    if batch_norm:
        logits = layers.BatchNormalization(dtype="float32", name="class_logits_bn")(logits)
        z = layers.BatchNormalization(dtype="float32", name="style_bn")(z)
    return keras.Model(x, [logits, z], name=name)


def ssaae_decoder(latent_dim=10, n_classes=10, hidden=(1000, 1000), original_dim=784, seed=None,
                  name="decoder"):
    """Decoder concat[y (n, n_classes), z (n, latent_dim)] -> pixel logits (n, original_dim)."""
    check_positive_int("latent_dim", latent_dim)
    check_positive_int("n_classes", n_classes)
    code = keras.Input((n_classes + latent_dim,), name="y_and_z")
    h = dense_stack(code, _check_hidden("hidden", hidden), kernel_initializer="he_normal",
                    seed=None if seed is None else seed + 10)
    logits = layers.Dense(check_positive_int("original_dim", original_dim),
                          kernel_initializer=_init(seed, 102), name="logits")(h)
    return keras.Model(code, layers.Activation("linear", dtype="float32", name="logits_float32")(logits),
                       name=name)


def ssaae_discriminator(width, d_hidden=(1000, 1000), seed=None, name="discriminator"):
    """Discriminator code (n, width) -> logit (n, 1); positive means "drawn from the prior"."""
    code = keras.Input((check_positive_int("discriminator input width", width),), name="code")
    h = dense_stack(code, _check_hidden("d_hidden", d_hidden), kernel_initializer="he_normal", seed=seed)
    return keras.Model(code, layers.Dense(1, dtype="float32", kernel_initializer=_init(seed, 103),
                                          name="logit")(h), name=name)


def build_semisupervised_aae(latent_dim=10, n_classes=10, hidden=(1000, 1000), d_hidden=(1000, 1000),
                             original_dim=784, seed=None, input_noise=0.3, supervised=True, dropout=0.0,
                             batch_norm=False, input_dropout=0.0, joint_style=False,
                             cat_temperature=None, cat_d_noise=0.0):
    """The four networks and the model. `supervised=False`: clustering (no labelled phase).

    Every network's weights and the model's noise come from `seed` (None: unseeded). `dropout`:
    rate of the encoder's dropout after each hidden layer (0: none); `batch_norm` and
    `input_dropout`: the encoder's (`ssaae_encoder`). `joint_style`, `cat_temperature` and
    `cat_d_noise`: the model's (`SemiSupervisedAAE`).
    """
    s = (lambda k: None if seed is None else seed * 1000 + k)
    return SemiSupervisedAAE(
        ssaae_encoder(latent_dim, n_classes, hidden, original_dim, seed=s(0), dropout=dropout,
                      batch_norm=batch_norm, input_dropout=input_dropout),
        ssaae_decoder(latent_dim, n_classes, hidden, original_dim, seed=s(200)),
        ssaae_discriminator(n_classes, d_hidden, seed=s(400), name="cat_discriminator"),
        ssaae_discriminator(latent_dim + n_classes * bool(joint_style), d_hidden, seed=s(600),
                            name="gauss_discriminator"),
        input_noise=input_noise, supervised=supervised, seed=s(800), joint_style=joint_style,
        cat_temperature=cat_temperature, cat_d_noise=cat_d_noise)


def _d_terms(logits, n):
    """Discriminator BCE (log 2 at chance) and accuracy; first n rows are prior samples."""
    real, fake = logits[:n], logits[n:]
    loss = 0.5 * (ops.mean(ops.softplus(-real)) + ops.mean(ops.softplus(fake)))
    acc = 0.5 * (ops.mean(ops.cast(real > 0, "float32")) + ops.mean(ops.cast(fake < 0, "float32")))
    return loss, acc


class SemiSupervisedAAE(PhasedModel):
    """Semi-supervised AAE (`supervised=True`) or AAE clustering (`supervised=False`).

    encoder: x -> [class logits, style z]; decoder: concat[softmax(logits), z] -> pixel logits;
    cat_discriminator: (n, n_classes) -> logit; gauss_discriminator: (n, latent_dim) -> logit.
    `input_noise`: std of the Gaussian noise added to the encoder's input while training (the
    reconstruction target stays clean). Phases and their variables:
    reconstruction (encoder + decoder), discriminator (both discriminators, losses added: their
    variables are disjoint, so each gets its own gradient), generator (encoder), and, when
    supervised, supervised (encoder less its style head, which the labelled loss does not reach).

    `joint_style=True`: the style discriminator sees [y, z] (n, n_classes + latent_dim) and its
    prior samples pair a one-hot y with an independent z ~ N(0, I). Two separate discriminators
    match only the marginals q(y) and q(z), so z may still say which digit it is (and the decoder
    then ignores y); matching the joint code to p(y) p(z) asks for z independent of y.

    `cat_temperature` (None: exact one-hot prior samples): the categorical prior's samples are
    relaxed one-hot vectors instead, softmax((Gumbel noise) / temperature) (the Gumbel-softmax, or
    Concrete, distribution over a uniform Cat(n_classes)); near 0 they approach one-hot. A soft
    q(y|x) then no longer gives itself away by being soft. `cat_d_noise` > 0: Gaussian noise of
    that std on everything the categorical discriminator sees while training (prior samples and
    codes, in the discriminator and generator phases alike), which blurs the same cue.
    """

    tracked = ("reconstruction_loss", "cat_d_loss", "cat_d_accuracy", "gauss_d_loss",
               "gauss_d_accuracy", "generator_loss", "supervised_loss", "supervised_accuracy")

    def __init__(self, encoder, decoder, cat_discriminator, gauss_discriminator, input_noise=0.3,
                 supervised=True, seed=None, joint_style=False, cat_temperature=None, cat_d_noise=0.0,
                 **kwargs):
        if len(encoder.outputs) != 2:
            raise ValueError("the encoder must have two outputs [class logits, style z]; build it "
                             "with ssaae_encoder().")
        n_classes, latent_dim = encoder.outputs[0].shape[-1], encoder.outputs[1].shape[-1]
        if decoder.inputs[0].shape[-1] != n_classes + latent_dim:
            raise ValueError(f"decoder takes {decoder.inputs[0].shape[-1]} inputs but needs "
                             f"n_classes + latent_dim = {n_classes} + {latent_dim}.")
        for d, width, what in ((cat_discriminator, n_classes, "n_classes"),
                               (gauss_discriminator, latent_dim + n_classes * bool(joint_style),
                                "n_classes + latent_dim (joint_style)" if joint_style else "latent_dim")):
            if d.inputs[0].shape[-1] != width:
                raise ValueError(f"{d.name} takes {d.inputs[0].shape[-1]} inputs but needs "
                                 f"{what} = {width}.")
        non_negative("input_noise", input_noise, " It is a standard deviation (0: no noise).")
        if cat_temperature is not None:
            positive("cat_temperature", cat_temperature, " None gives exact one-hot prior samples.")
        non_negative("cat_d_noise", cat_d_noise, " It is a standard deviation (0: no noise).")
        if supervised and n_classes < 2:
            raise ValueError("supervised training needs n_classes >= 2")
        # The class's `tracked`, less the supervised terms when clustering: set before
        # _Tracked.__init__ makes the trackers (object.__setattr__: Keras is not tracking yet).
        object.__setattr__(self, "tracked", tuple(
            t for t in type(self).tracked if supervised or not t.startswith("supervised")))
        super().__init__(**kwargs)
        self.encoder, self.decoder = encoder, decoder
        self.cat_discriminator, self.gauss_discriminator = cat_discriminator, gauss_discriminator
        self.n_classes, self.latent_dim = n_classes, latent_dim
        self.input_noise, self.supervised, self.seed = float(input_noise), bool(supervised), seed
        self.joint_style = bool(joint_style)
        self.cat_temperature = None if cat_temperature is None else float(cat_temperature)
        self.cat_d_noise = float(cat_d_noise)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True

    # -- compile -----------------------------------------------------------------------------
    def compile(self, ae_optimizer=None, d_optimizer=None, g_optimizer=None, s_optimizer=None,
                **kwargs):
        """One optimizer per phase. Defaults (Adam): 1e-3 reconstruction, 1e-4 discriminators,
        1e-4 generator, 1e-3 supervised; `s_optimizer` is ignored when not supervised."""
        optimizers = {"reconstruction": ae_optimizer or keras.optimizers.Adam(1e-3),
                      "discriminator": d_optimizer or keras.optimizers.Adam(1e-4),
                      "generator": g_optimizer or keras.optimizers.Adam(1e-4)}
        if self.supervised:
            optimizers["supervised"] = s_optimizer or keras.optimizers.Adam(1e-3)
        self.compile_phases(optimizers, **kwargs)

    def phase_variables(self):
        enc = self.encoder.trainable_weights
        out = {"reconstruction": enc + self.decoder.trainable_weights,
               "discriminator": (self.cat_discriminator.trainable_weights
                                 + self.gauss_discriminator.trainable_weights),
               "generator": enc}
        if self.supervised:  # the labelled loss does not reach the style head
            style = {id(v) for layer in self.encoder.layers if layer.name in ("style", "style_bn")
                     for v in layer.trainable_weights}
            out["supervised"] = [v for v in enc if id(v) not in style]
        return out

    # -- training ----------------------------------------------------------------------------
    def _noisy(self, x, training):
        if not training or self.input_noise == 0.0:
            return x
        return x + self.input_noise * keras.random.normal(ops.shape(x), seed=self.seed_generator)

    def _cat_prior(self, n):
        """n samples of the categorical prior: one-hot, or relaxed one-hot (`cat_temperature`)."""
        if self.cat_temperature is None:
            return ops.one_hot(keras.random.randint((n,), 0, self.n_classes, seed=self.seed_generator),
                               self.n_classes)
        u = keras.random.uniform((n, self.n_classes), 1e-6, 1.0 - 1e-6, seed=self.seed_generator)
        return ops.softmax(-ops.log(-ops.log(u)) / self.cat_temperature, axis=-1)

    def _cat_d(self, q, training):
        """The categorical discriminator's logits for q, with its input noise while training."""
        if training and self.cat_d_noise:
            q = q + self.cat_d_noise * keras.random.normal(ops.shape(q), seed=self.seed_generator)
        return self.cat_discriminator(q, training=training)

    def _split_inputs(self, x, y):
        if isinstance(x, dict):
            if "x" not in x:
                raise ValueError(f"x as a dict needs the key 'x' (unlabelled images), got {sorted(x)}.")
            return x["x"], x.get("x_labelled"), y
        if isinstance(x, (list, tuple)):
            if len(x) != 2:
                raise ValueError("x as a tuple must be (x_unlabelled, x_labelled).")
            return x[0], x[1], y
        return x, None, None

    def _tracked_values(self, x, y, step, training):
        x_u, _, _ = self._split_inputs(x, y)
        return self._update(self.phases(x, y, step, training), ops.shape(x_u)[0])

    def phases(self, x, y, step, training):
        x, x_l, y_l = self._split_inputs(x, y)
        if self.supervised and (x_l is None or y_l is None):
            raise ValueError("a supervised SemiSupervisedAAE needs labelled batches: fit(x, y) with "
                             "x = {'x': unlabelled, 'x_labelled': labelled} and y the labels "
                             "(semi_supervised_inputs builds them), or build it with supervised=False.")
        n = ops.shape(x)[0]
        x_in = self._noisy(x, training)

        # (1) Reconstruction: encoder + decoder, BCE summed over pixels.
        def reconstruction():
            logits, z = self.encoder(x_in, training=training)
            q = ops.softmax(logits, axis=-1)
            rec = ops.mean(bce_sum_from_logits(x, self.decoder(ops.concatenate([q, z], -1),
                                                                  training=training)))
            return rec, (q, z)

        rec, (q, z) = step("reconstruction", reconstruction)

        # (2a) Discriminators: prior samples real (1), codes fake (0); codes from phase 1.
        cat = self._cat_prior(n)
        gauss = keras.random.normal((n, self.latent_dim), seed=self.seed_generator)
        cat_in = ops.concatenate([cat, ops.stop_gradient(q)], axis=0)
        if self.joint_style:  # the prior p(y) p(z): a one-hot y drawn independently of z
            gauss = ops.concatenate([cat, gauss], axis=-1)
            gauss_in = ops.concatenate([gauss, ops.stop_gradient(ops.concatenate([q, z], -1))], axis=0)
        else:
            gauss_in = ops.concatenate([gauss, ops.stop_gradient(z)], axis=0)

        def discriminator():
            c_loss, c_acc = _d_terms(self._cat_d(cat_in, training), n)
            g_loss, g_acc = _d_terms(self.gauss_discriminator(gauss_in, training=training), n)
            return c_loss + g_loss, (c_loss, c_acc, g_loss, g_acc)

        _, (c_loss, c_acc, gd_loss, gd_acc) = step("discriminator", discriminator)

        # (2b) Generator: the encoder makes both discriminators call its codes real.
        def generator():
            logits, z = self.encoder(x_in, training=training)
            q = ops.softmax(logits, axis=-1)
            loss = (ops.mean(ops.softplus(-self._cat_d(q, training)))
                    + ops.mean(ops.softplus(-self.gauss_discriminator(
                        ops.concatenate([q, z], -1) if self.joint_style else z, training=training))))
            return loss, None

        g_loss, _ = step("generator", generator)
        out = {"reconstruction_loss": rec, "cat_d_loss": c_loss, "cat_d_accuracy": c_acc,
               "gauss_d_loss": gd_loss, "gauss_d_accuracy": gd_acc, "generator_loss": g_loss}

        # (3) Semi-supervised: cross-entropy of q(y|x) on the labelled batch.
        if self.supervised:
            labels = ops.cast(ops.reshape(y_l, (-1,)), "int32")
            xl_in = self._noisy(x_l, training)

            def supervised():
                logits, _ = self.encoder(xl_in, training=training)
                ce = ops.mean(ops.sparse_categorical_crossentropy(labels, logits, from_logits=True))
                acc = ops.mean(ops.cast(ops.argmax(logits, axis=-1) == labels, "float32"))
                return ce, acc

            s_loss, s_acc = step("supervised", supervised)
            out.update(supervised_loss=s_loss, supervised_accuracy=s_acc)
        return out

    # -- inference ---------------------------------------------------------------------------
    def call(self, x, training=False):
        """Pixel logits of the reconstructions (no input noise)."""
        logits, z = self.encoder(x, training=training)
        return self.decoder(ops.concatenate([ops.softmax(logits, -1), z], -1), training=training)

    def encode(self, x, batch_size=4096):
        """(q(y|x) (n, n_classes), style z (n, latent_dim)) as NumPy arrays, no input noise."""
        x = np.asarray(x, "float32")
        if not len(x):
            return np.zeros((0, self.n_classes), "float32"), np.zeros((0, self.latent_dim), "float32")

        def code(b):
            logits, z = self.encoder(b, training=False)
            return ops.concatenate([ops.softmax(logits, -1), z], -1)
        qz = batched(code, x, batch_size)
        return qz[:, :self.n_classes], qz[:, self.n_classes:]

    def predict_proba(self, x, batch_size=4096):
        """q(y|x), shape (n, n_classes)."""
        return self.encode(x, batch_size)[0]

    def decode(self, y, z):
        """Pixel probabilities (n, 784) from class codes y (n,) ints or (n, n_classes) rows and z."""
        y = np.asarray(y)
        if y.ndim == 1:
            if y.size and (y.min() < 0 or y.max() >= self.n_classes):
                raise ValueError(f"class indices must lie in 0..{self.n_classes - 1}")
            y = np.eye(self.n_classes, dtype="float32")[y]
        code = np.concatenate([y.astype("float32"), np.asarray(z, "float32")], axis=-1)
        return decode_batched(self.decoder, code)


# -- data --------------------------------------------------------------------------------------
def split_validation(x_train, y_train, val_size=10_000):
    """((x_fit, y_fit), (x_val, y_val)): the last `val_size` training images are held out."""
    n = len(x_train)
    if isinstance(val_size, bool) or not isinstance(val_size, int) or not 0 < val_size < n:
        raise ValueError(f"val_size must be an integer from 1 to {n - 1} (of {n} training images), "
                         f"got {val_size!r}.")
    return (x_train[:-val_size], y_train[:-val_size]), (x_train[-val_size:], y_train[-val_size:])


def balanced_labelled_subset(y, n_labels, n_classes=10, seed=0):
    """Indices into `y` of `n_labels` examples, `n_labels / n_classes` of each class, drawn by `seed`.

    Sorted indices; the same seed gives the same subset. Raises if n_labels is not a multiple of
    n_classes or a class has too few examples.
    """
    y = np.asarray(y).reshape(-1)
    check_positive_int("n_labels", n_labels)
    if n_labels % n_classes:
        raise ValueError(f"n_labels = {n_labels} must be a multiple of n_classes = {n_classes} "
                         "(a balanced draw takes the same number of each class).")
    per_class = n_labels // n_classes
    rng = np.random.default_rng(seed)
    picked = []
    for c in range(n_classes):
        where = np.flatnonzero(y == c)
        if len(where) < per_class:
            raise ValueError(f"class {c} has {len(where)} examples, fewer than the {per_class} "
                             f"needed for {n_labels} balanced labels.")
        picked.append(rng.choice(where, per_class, replace=False))
    return np.sort(np.concatenate(picked))


def semi_supervised_inputs(x_unlabelled, x_labelled, y_labelled, seed=0):
    """(x, y) for `fit`: x = {"x": x_unlabelled, "x_labelled": ...}, y = labels, where the
    labelled examples are repeated (in shuffled rounds, every example once per round) to the
    length of x_unlabelled, so each unlabelled batch comes with a labelled batch of equal size."""
    n, m = len(x_unlabelled), len(x_labelled)
    if m == 0 or m != len(y_labelled):
        raise ValueError(f"need at least one labelled example and as many labels as images, got "
                         f"{m} images and {len(y_labelled)} labels.")
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(m) for _ in range(-(-n // m))])[:n]
    return ({"x": np.asarray(x_unlabelled, "float32"),
             "x_labelled": np.asarray(x_labelled, "float32")[order]},
            np.asarray(y_labelled).astype("int32")[order])


# -- scores ------------------------------------------------------------------------------------
def classification_error(q, y):
    """Fraction of rows whose argmax of q (n, n_classes) differs from the label y (n,)."""
    q, y = np.asarray(q), np.asarray(y).reshape(-1)
    if q.ndim != 2 or len(q) != len(y) or len(y) == 0:
        raise ValueError(f"q must be (n, n_classes) with n = len(y) > 0; got {q.shape} and {y.shape}.")
    return float(np.mean(q.argmax(1) != y))


def cluster_labels(q_val, y_val, rule="confident"):
    """The label of each cluster, from held-out examples (n, n_clusters) probabilities.

    rule="confident" (the paper's): cluster i takes the label of the example that maximises
    q(y_i | x). rule="majority": the most common label among the examples whose argmax is i
    (a cluster that wins no example falls back to the confident rule).
    """
    q_val, y_val = np.asarray(q_val), np.asarray(y_val).reshape(-1)
    if q_val.ndim != 2 or len(q_val) != len(y_val) or len(y_val) == 0:
        raise ValueError(f"q_val must be (n, n_clusters) with n = len(y_val) > 0; got {q_val.shape}.")
    confident = y_val[q_val.argmax(0)]
    if rule == "confident":
        return confident
    if rule != "majority":
        raise ValueError(f"rule must be 'confident' or 'majority', got {rule!r}.")
    won = q_val.argmax(1)
    out = confident.copy()
    for i in range(q_val.shape[1]):
        if np.any(won == i):
            out[i] = np.bincount(y_val[won == i]).argmax()
    return out


def cluster_error(q_val, y_val, q_test, y_test, rule="confident"):
    """Test error of clusters labelled from held-out examples (`cluster_labels`)."""
    labels = cluster_labels(q_val, y_val, rule)
    q_test, y_test = np.asarray(q_test), np.asarray(y_test).reshape(-1)
    if q_test.ndim != 2 or q_test.shape[1] != len(labels) or len(q_test) != len(y_test):
        raise ValueError(f"q_test must be (n, {len(labels)}) with n = len(y_test); got {q_test.shape}.")
    return float(np.mean(labels[q_test.argmax(1)] != y_test))


def style_leak(z_fit, y_fit, z_test, y_test, k=5):
    """How much of the label the style code z carries: kNN and linear-probe accuracy of the
    digit from z (chance is 1 / n_classes; near 1 means labels leak into z)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from .metrics import knn_accuracy

    scaler = StandardScaler().fit(z_fit)
    probe = LogisticRegression(max_iter=500).fit(scaler.transform(z_fit), y_fit)
    return {"knn_accuracy": knn_accuracy(z_fit, y_fit, z_test, y_test, k=k),
            "linear_probe_accuracy": float(probe.score(scaler.transform(z_test), y_test))}


def content_follows_y(model, z, classify, labels=None):
    """How far the decoder draws what y says: the share of decoded images [one-hot y = i, style z]
    that `classify` reads as `labels[i]`, over every style row of `z` and every class i.

    `model`: anything with `n_classes` and `decode(y, z)` (y as class indices), such as a
    SemiSupervisedAAE; classify(images) -> class probabilities (n, n_labels), e.g.
    `lambda images: aae.judge.predict_proba(judge, images)`. `labels`: the label each categorical
    class stands for (default: class i is label i; for clusters, `cluster_labels`).
    Returns {"share": overall, "per_class": share per class}. A decoder that ignores y draws the
    same image for every y and scores 1 / n_labels on balanced styles; one that draws y's label
    in every style scores 1.
    """
    z = np.asarray(z, "float32")
    if z.ndim != 2 or not len(z):
        raise ValueError(f"z must be (n_styles, latent_dim) with n_styles > 0, got shape {z.shape}.")
    labels = np.arange(model.n_classes) if labels is None else np.asarray(labels).reshape(-1)
    if len(labels) != model.n_classes:
        raise ValueError(f"labels must give one label per class: {model.n_classes}, got {len(labels)}.")
    hits = [float(np.mean(np.asarray(classify(model.decode(np.full(len(z), i), z))).argmax(1) == label))
            for i, label in enumerate(labels)]
    return {"share": float(np.mean(hits)), "per_class": hits}


class ErrorHistory(keras.callbacks.Callback):
    """Classification error on held-out sets after each epoch; keeps the best weights.

    `sets`: {name: (x, y)}; `select_on` names the set whose error picks the epoch whose weights
    are restored at the end (early stopping on validation error). `patience`: stop after that many
    epochs without improvement (None: never stop early). Errors land in `history[name]` and in
    Keras's logs as `<name>_error`.
    """

    def __init__(self, sets, select_on="validation", patience=None, restore_best=True):
        super().__init__()
        if select_on is not None and select_on not in sets:
            raise ValueError(f"select_on={select_on!r} is not one of the sets {sorted(sets)}.")
        self.sets, self.select_on = dict(sets), select_on
        self.patience, self.restore_best = patience, restore_best
        self.history = {name: [] for name in self.sets}
        self.best, self.best_epoch, self._best_weights = np.inf, -1, None

    def on_epoch_end(self, epoch, logs=None):
        for name, (x, y) in self.sets.items():
            err = classification_error(self.model.predict_proba(x), y)
            self.history[name].append(err)
            if logs is not None:
                logs[f"{name}_error"] = err
        if self.select_on is None:
            return
        err = self.history[self.select_on][-1]
        if err < self.best:
            self.best, self.best_epoch = err, epoch
            if self.restore_best:
                self._best_weights = self.model.get_weights()
        elif self.patience is not None and epoch - self.best_epoch >= self.patience:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best and self._best_weights is not None:
            self.model.set_weights(self._best_weights)
