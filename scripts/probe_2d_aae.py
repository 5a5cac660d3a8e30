"""Train one of notebook 04's 2-D adversarial autoencoders and record, per epoch, how well its
codes separate the digits and how well they match the prior (issue 21).

One run = (prior, recipe, seed). It trains, as notebook 04's 2-D models do, on the first 50,000
MNIST training images (the last 10,000 are the notebook's Parzen hold-out and are never trained
on) and records after every epoch: the 5-NN accuracy of the test codes (fitted on the training
codes), the codes' mean and std per axis, the share of test codes beyond 3 prior std from the
prior's centre (Gaussian prior only; prior: 1.1 %), the epoch's mean discriminator accuracy and
reconstruction loss; for the supervised priors the share of test codes in their own digit's
region (notebook 04's `own_region_rate`) and the same share of the training images, for the unsupervised mixture the components reached
and the centre/gap shares (notebook 04's `mixture_coverage`). With `--judge` (notebook 05's saved
digit classifier) the Gaussian prior's last epoch is also judged as notebook 05 judges it: the
share of prior mass that decodes to a clear digit and each digit's share against its fair one.
Writes <out>/<name>.json.

    KERAS_BACKEND=jax python scripts/probe_2d_aae.py --name g-g3e-4 --g-lr 3e-4
    python scripts/probe_2d_aae.py --name g-x --judge results/models/digit_classifier.keras
    python scripts/probe_2d_aae.py --table   # the README's table of every run in results/tuning-2d-aae

The "train s" of a run is the time inside its epochs, measurements excluded; on a shared 2-core
CPU it is only a rough guide.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from aae.adversarial import adversarial_autoencoder  # noqa: E402
from aae.data import load_mnist  # noqa: E402
from aae.metrics import _jsonable, knn_accuracy  # noqa: E402
from aae.occupancy import UNCLEAR, balance, classify_grid, prior_mass_shares  # noqa: E402
from aae.phases import adam  # noqa: E402
from aae.priors import GaussianPrior, MixturePrior, SwissRollPrior  # noqa: E402
from aae.runtime import compile_options, runtime_info  # noqa: E402

PRIORS = ("gaussian", "mixture", "swiss_roll", "supervised")
PRIOR_POINTS = 5000  # notebook 04's prior_points: labelled prior samples for the own-region rate
GRID_N, GRID_LIM, THRESHOLD = 200, 4.0, 0.9  # notebook 05's grid_n, grid_lim, confidence_threshold


def make_prior(name, scale=1.0):
    """Notebook 04's priors at its default parameter values; supervised or not."""
    if name == "gaussian":
        return GaussianPrior(2, scale), False
    if name == "swiss_roll":
        return SwissRollPrior(4.0, 1.5, 0.15), True
    return MixturePrior(10, radius=4.0, std=0.5), name == "supervised"


def mixture_coverage(z, prior):
    """Notebook 04's cell 10: share near each component, in the gaps, in the ring's centre."""
    z = np.asarray(z, "float64")
    distance = np.linalg.norm(z[:, None, :] - prior.means[None], axis=-1)
    near = distance.min(1) <= 2 * prior.std
    return {"component_share": np.bincount(distance.argmin(1)[near], minlength=prior.n_classes) / len(z),
            "centre_share": float(np.mean(np.linalg.norm(z, axis=1) < prior.radius / 2)),
            "gap_share": float(np.mean(~near))}


def radial_ks(z, scale=1.0):
    """Kolmogorov-Smirnov distance between the codes' squared radii and the N(0, scale^2 I) prior's
    (chi-squared, 2 degrees of freedom): 0 when the codes fill the prior from its centre out as it
    does; codes crowded at the centre with sparse wedges around them, matching the prior's std
    alone, score far from 0."""
    r2 = np.sum((np.asarray(z, "float64") / scale) ** 2, axis=1)
    return float(stats.kstest(r2, stats.chi2(2).cdf).statistic)


def fixed_noise_posterior(model, std, prior, supervised, seed):
    """The same networks with a Gaussian posterior N(code, std^2 I) of fixed std: the encoder gets
    a constant log-variance head, and the model samples codes in every training phase."""
    enc = model.encoder
    code = enc.outputs[0]
    log_var = keras.layers.Lambda(lambda z: keras.ops.zeros_like(z) + 2 * float(np.log(std)),
                                  name="fixed_log_var")(code)
    encoder = keras.Model(enc.inputs, [code, log_var], name="encoder")
    return type(model)(encoder, model.decoder, model.discriminator, prior, posterior="gaussian",
                       supervised=supervised, seed=seed, d_input_noise=model.d_input_noise)


class Probe(keras.callbacks.Callback):
    """Measures the codes after every epoch (the measurements' time is not training time)."""

    def __init__(self, args, prior, supervised, data, record):
        super().__init__()
        self.args, self.prior, self.supervised, self.record = args, prior, supervised, record
        self.x_fit, self.y_fit, self.x_test, self.y_test = data
        self.train_seconds = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.train_seconds += time.perf_counter() - self._start
        model, k = self.model, self.args.knn_neighbors
        z_fit, z_test = model.encode(self.x_fit), model.encode(self.x_test)
        row = {"epoch": epoch + 1, "train_seconds": self.train_seconds,
               "knn_accuracy": knn_accuracy(z_fit, self.y_fit, z_test, self.y_test, k=k),
               "code_mean": np.mean(z_test, 0).tolist(), "code_std": np.std(z_test, 0).tolist(),
               "discriminator_accuracy": float(logs["discriminator_accuracy"]),
               "discriminator_loss": float(logs["discriminator_loss"]),
               "generator_loss": float(logs["generator_loss"]),
               "reconstruction_loss": float(logs["reconstruction_loss"])}
        if isinstance(self.prior, GaussianPrior):
            row["beyond_3std"] = float(np.mean(np.linalg.norm(z_test, axis=1) > 3 * self.prior.scale))
            row["radial_ks"] = radial_ks(z_test, self.prior.scale)
        if self.supervised:
            z_prior, region = self.prior.sample(PRIOR_POINTS, self.args.seed, return_labels=True)
            row["own_region_rate"] = knn_accuracy(z_prior, region, z_test, self.y_test, k=k)
            # the same on the training images: far above the test rate, the encoder overfits; close, it is
            # the game that leaves codes in another digit's component
            row["train_own_region_rate"] = knn_accuracy(z_prior, region, z_fit, self.y_fit, k=k)
        elif isinstance(self.prior, MixturePrior):
            cov = mixture_coverage(z_test, self.prior)
            row.update(components_reached=int((cov["component_share"] >= 0.5 / self.prior.n_classes).sum()),
                       centre_share=cov["centre_share"], gap_share=cov["gap_share"])
        self.record.append(row)
        extra = "".join(f" {key} {row[key]:.3f}" for key in ("beyond_3std", "radial_ks", "own_region_rate",
                                                            "gap_share") if key in row)
        extra += f" components {row['components_reached']}" if "components_reached" in row else ""
        print(f"epoch {epoch + 1}: {self.train_seconds:.0f} s, kNN {row['knn_accuracy']:.4f}, "
              f"std {row['code_std'][0]:.2f} {row['code_std'][1]:.2f}, D acc "
              f"{row['discriminator_accuracy']:.3f}, rec {row['reconstruction_loss']:.1f}{extra}",
              flush=True)


def judged(decoder, judge, train_labels):
    """Notebook 05's numbers for an N(0, I) prior: clear prior mass and each digit against its fair share."""
    grid = classify_grid(decoder, judge, lim=GRID_LIM, n=GRID_N, threshold=THRESHOLD)
    mass = prior_mass_shares(grid)  # N(0, I): each cell's exact prior mass
    fair = balance(mass, np.bincount(train_labels, minlength=10))
    ratio = fair["over_representation"]
    return {"clear_prior_mass": float(1.0 - mass[UNCLEAR]), "kl_nats": fair["kl_nats"],
            "over_representation": ratio.tolist(), "least_served": fair["least_served"],
            "least_ratio": None if fair["least_served"] is None else float(ratio[fair["least_served"]])}


def judged_text(j):
    """One line of `judged`'s numbers."""
    if j["least_served"] is None:
        return f"clear prior mass {j['clear_prior_mass']:.2f}, no clear digit"
    return (f"clear prior mass {j['clear_prior_mass']:.2f}, least-served digit {j['least_served']} at "
            f"{j['least_ratio']:.2f}x its fair share, zero at {j['over_representation'][0]:.2f}x")


def table(out):
    """Markdown rows, one per run in `out` (sorted by prior, then name), for its README."""
    rows = []
    for path in sorted(Path(out).glob("*.json")):
        run = json.loads(path.read_text())
        m, a = run["metrics"], run["parameters"]
        f = m["final"]
        recipe = (f"rec {a['lr']:g} / D {a['d_lr']:g} / G {a['g_lr']:g}, beta_1 {a['beta_1']:g}"
                  + (f", hidden {'x'.join(map(str, a['hidden']))}" if a["hidden"] != [512, 512] else "")
                  + (f", D {'x'.join(map(str, a['d_hidden']))}" if a["d_hidden"] != [512, 256] else "")
                  + (", Gaussian posterior" if a["posterior"] == "gaussian" else "")
                  + (", encoder batch norm" if a["encoder_batch_norm"] else "")
                  + (", code batch norm" if a.get("code_batch_norm") else "")
                  + (f", D input noise {a['d_noise']:g}" if a.get("d_noise") else "")
                  + (f", dropout {a['dropout']:g}" if a.get("dropout") else "")
                  + (f", code noise {a['code_noise']:g}" if a.get("code_noise") else "")
                  + (f", prior std {a['prior_scale']:g}" if a.get("prior_scale", 1.0) != 1.0 else "")
                  + (", constant rates" if a["no_decay"] else "") + (f", batch {a['batch_size']}" if a["batch_size"] != 128 else ""))
        knn = " / ".join(f"{e['knn_accuracy']:.2f}" for e in m["epochs"])
        judge = m.get("judged")
        judge = f"; {judged_text(judge)}" if judge else ""
        ks = f", radial KS {f['radial_ks']:.3f}" if "radial_ks" in f else ""
        other = (f"beyond 3 std {f['beyond_3std']:.3f}{ks}{judge}" if "beyond_3std" in f else
                 f"own region {f['own_region_rate']:.3f}"
                 + (f" (training images {f['train_own_region_rate']:.3f})" if "train_own_region_rate" in f else "")
                 if "own_region_rate" in f else
                 f"components {f['components_reached']}, gaps {f['gap_share']:.2f}, centre {f['centre_share']:.2f}"
                 if "components_reached" in f else "")
        rows.append((a["prior"], path.stem,
                     f"| {path.stem} | {a['prior']} | {recipe} | {a['seed']} | {len(m['epochs'])} | {knn} | "
                     f"{f['code_std'][0]:.2f}, {f['code_std'][1]:.2f} | {other} | {f['discriminator_accuracy']:.2f} | "
                     f"{f['reconstruction_loss']:.1f} | {m['train_seconds']:.0f} | {m['backend']} |"))
    head = ("| run | prior | recipe (Adam rates) | seed | epochs | kNN per epoch | codes' std | prior fit | D acc | "
            "rec. loss | train s | backend |\n|---|---|---|---|---|---|---|---|---|---|---|---|")
    order = {name: i for i, name in enumerate(PRIORS)}
    return "\n".join([head] + [r for _, _, r in sorted(rows, key=lambda r: (order[r[0]], r[1]))])


def main(argv=None):
    if argv is None and sys.argv[1:2] == ["--table"]:
        print(table(sys.argv[2] if len(sys.argv) > 2 else "results/tuning-2d-aae"))
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", required=True)
    p.add_argument("--out", default="results/tuning-2d-aae")
    p.add_argument("--prior", choices=PRIORS, default="gaussian")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--hidden", type=int, nargs="+", default=[512, 512])
    p.add_argument("--d-hidden", type=int, nargs="+", default=[512, 256])
    p.add_argument("--posterior", choices=("deterministic", "gaussian"), default="deterministic")
    p.add_argument("--encoder-batch-norm", action="store_true",
                   help="batch normalisation after each hidden layer of the encoder")
    p.add_argument("--code-batch-norm", action="store_true",
                   help="standardise each axis of a batch of codes (Gaussian prior only)")
    p.add_argument("--d-noise", type=float, default=0.0,
                   help="std of the Gaussian noise on the discriminator's code inputs (training only)")
    p.add_argument("--dropout", type=float, default=0.0,
                   help="dropout after each hidden layer of encoder and decoder (training only)")
    p.add_argument("--code-noise", type=float, default=0.0,
                   help="a Gaussian posterior of this fixed std: every training phase uses the code plus "
                        "N(0, std^2) noise (measurements use the code itself)")
    p.add_argument("--prior-scale", type=float, default=1.0, help="std of the Gaussian prior")
    p.add_argument("--lr", type=float, default=1e-3, help="reconstruction phase")
    p.add_argument("--d-lr", type=float, default=1e-3, help="discriminator phase")
    p.add_argument("--g-lr", type=float, default=1e-3, help="generator phase")
    p.add_argument("--beta-1", type=float, default=0.9, help="Adam beta_1 of D and G")
    p.add_argument("--no-decay", action="store_true", help="constant rates instead of cosine decay to 0")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--knn-neighbors", type=int, default=5)
    p.add_argument("--train-size", type=int, default=None, help="first images of the 50,000 (probe the probe)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--judge", default=None,
                   help="notebook 05's saved digit classifier (results/models/digit_classifier.keras): judge the "
                        "Gaussian prior's decoded grid after the last epoch as notebook 05 does")
    args = p.parse_args(argv)
    if args.judge and (args.prior != "gaussian" or args.prior_scale != 1.0):
        p.error("--judge measures the N(0, I) prior's mass: use it with --prior gaussian and --prior-scale 1")
    if args.judge and not Path(args.judge).is_file():
        p.error(f"--judge {args.judge}: no such file; notebook 05 saves it in results/models/digit_classifier.keras")

    keras.utils.set_random_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = load_mnist(os.environ.get("AAE_DATA_DIR"))
    x_fit, y_fit = x_train[:-10_000][:args.train_size], y_train[:-10_000][:args.train_size]
    prior, supervised = make_prior(args.prior, args.prior_scale)
    options = {"encoder_batch_norm": True} if args.encoder_batch_norm else {}
    if args.code_batch_norm:
        options["code_batch_norm"] = True
    if args.d_noise:
        options["d_input_noise"] = args.d_noise
    if args.dropout:
        options["dropout"] = args.dropout
    model = adversarial_autoencoder(prior, args.hidden, args.d_hidden, posterior=args.posterior,
                                    supervised=supervised, seed=args.seed, **options)
    if args.code_noise:
        model = fixed_noise_posterior(model, args.code_noise, prior, supervised, args.seed)
    steps = args.epochs * -(-len(x_fit) // args.batch_size)
    decay = None if args.no_decay else steps
    model.compile(ae_optimizer=adam(args.lr, decay), d_optimizer=adam(args.d_lr, decay, args.beta_1),
                  g_optimizer=adam(args.g_lr, decay, args.beta_1), **compile_options(1, True))
    record = []
    probe = Probe(args, prior, supervised, (x_fit, y_fit, x_test, y_test), record)
    model.fit(x_fit, y_fit if supervised else None, batch_size=args.batch_size, epochs=args.epochs,
              verbose=0, callbacks=[probe])
    result = {"final": record[-1], "epochs": record, "train_seconds": probe.train_seconds,
              "backend": keras.backend.backend(), "train_images": len(x_fit), "test_images": len(x_test)}
    if args.judge:
        result["judged"] = judged(model.decoder, keras.saving.load_model(args.judge), y_train)
        print("judged:", judged_text(result["judged"]), flush=True)
    path = Path(args.out) / f"{args.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"metrics": _jsonable(result), "parameters": _jsonable(vars(args)),
                                "runtime": runtime_info()}, indent=2, sort_keys=True) + "\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
