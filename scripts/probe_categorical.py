"""Short side-by-side runs of the AAE's categorical code (notebook 06): clustering and the
semi-supervised model, one variant of the encoder or schedule per run, the three failure modes
measured after every epoch. The table behind notebook 06's choices (results/tuning-categorical/).

    KERAS_BACKEND=jax python scripts/probe_categorical.py --task clusters --n-classes 16 \
        --variant bn_z5 --batch-norm --latent-dim 5 --epochs 6 --train-size 20000

Each run writes <out>/<variant>.json: its arguments and one row per epoch with the categorical
discriminator's accuracy, the mean max q(y|x) on the test set, the clusters used (clustering) or
the validation and test errors (semi-supervised), the clustering error by the paper's rule and
by majority vote, and "content follows y" (the share of decoded [y, z] images a digit classifier
reads as y's label) on `--styles` test styles. Everything is chosen on the validation split (the
last 10,000 training images); the test numbers are recorded, never used to choose.
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

from aae.data import load_dataset  # noqa: E402
from aae.judge import predict_proba, train_classifier  # noqa: E402
from aae.phases import adam  # noqa: E402
from aae.runtime import compile_options, runtime_info  # noqa: E402
from aae.semisupervised import (balanced_labelled_subset, build_semisupervised_aae,  # noqa: E402
                                classification_error, cluster_error, cluster_labels,
                                content_follows_y, semi_supervised_inputs, split_validation,
                                style_leak)


def judge_for(x, y, path):
    """A digit classifier for "content follows y", trained once and kept at `path`."""
    if path and Path(path).exists():
        return keras.models.load_model(path)
    judge, _ = train_classifier(x, y, epochs=2, seed=0)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        judge.save(path)
    return judge


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variant", required=True, help="the run's name (its file name)")
    p.add_argument("--task", choices=["clusters", "labels"], default="clusters")
    p.add_argument("--out", default="results/tuning-categorical")
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--n-classes", type=int, default=16)
    p.add_argument("--n-labels", type=int, default=100)
    p.add_argument("--latent-dim", type=int, default=10)
    p.add_argument("--hidden", type=int, nargs="+", default=[500, 500])
    p.add_argument("--d-hidden", type=int, nargs="+", default=[500, 500])
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--train-size", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=1e-3, help="reconstruction, Adam")
    p.add_argument("--d-lr", type=float, default=3e-4)
    p.add_argument("--g-lr", type=float, default=3e-4)
    p.add_argument("--s-lr", type=float, default=1e-3)
    p.add_argument("--beta-1", type=float, default=0.5, help="of the discriminator and generator phases")
    p.add_argument("--no-decay", action="store_true", help="constant rates (default: cosine to 0)")
    p.add_argument("--input-noise", type=float, default=0.3)
    p.add_argument("--input-dropout", type=float, default=0.0)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--batch-norm", action="store_true", help="batch norm in the encoder, heads included")
    p.add_argument("--joint-style", action="store_true", help="the style discriminator sees [y, z]")
    p.add_argument("--cat-temperature", type=float, default=None,
                   help="relaxed one-hot prior samples at this temperature (default: exact one-hot)")
    p.add_argument("--cat-d-noise", type=float, default=0.0, help="std of the noise on the categorical D's inputs")
    p.add_argument("--styles", type=int, default=300, help="test styles for content follows y")
    p.add_argument("--judge", default=".cache/judge_mnist.keras", help="where the digit classifier is kept")
    args = p.parse_args(argv)

    keras.utils.set_random_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = load_dataset(args.dataset, os.environ.get("AAE_DATA_DIR"))
    (x_fit, y_fit), (x_val, y_val) = split_validation(x_train, y_train, 10_000)
    judge = judge_for(x_fit, y_fit, args.judge)
    classify = lambda images: predict_proba(judge, images)  # noqa: E731
    x_fit, y_fit = x_fit[:args.train_size], y_fit[:args.train_size]
    supervised = args.task == "labels"
    n_classes = 10 if supervised else args.n_classes
    model = build_semisupervised_aae(args.latent_dim, n_classes, tuple(args.hidden), tuple(args.d_hidden),
                                     seed=args.seed, input_noise=args.input_noise, supervised=supervised,
                                     dropout=args.dropout, batch_norm=args.batch_norm,
                                     input_dropout=args.input_dropout, joint_style=args.joint_style,
                                     cat_temperature=args.cat_temperature, cat_d_noise=args.cat_d_noise)
    steps = args.epochs * -(-len(x_fit) // args.batch_size)
    decay = None if args.no_decay else steps
    model.compile(ae_optimizer=adam(args.lr, decay), d_optimizer=adam(args.d_lr, decay, args.beta_1),
                  g_optimizer=adam(args.g_lr, decay, args.beta_1), s_optimizer=adam(args.s_lr, decay),
                  **compile_options(1, True))
    if supervised:
        idx = balanced_labelled_subset(y_fit, args.n_labels, 10, seed=args.seed)
        x, y = semi_supervised_inputs(x_fit, x_fit[idx], y_fit[idx], seed=args.seed)
    else:
        x, y = x_fit, None
    styles = np.random.default_rng(args.seed).choice(len(x_test), args.styles, replace=False)
    rows, start = [], time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def measure(epoch, logs):
        q_val, _ = model.encode(x_val)
        q_test, z_test = model.encode(x_test)
        row = {"epoch": epoch + 1, "seconds": round(time.perf_counter() - start, 1),
               "cat_d_accuracy": float(logs["cat_d_accuracy"]), "gauss_d_accuracy": float(logs["gauss_d_accuracy"]),
               "generator_loss": float(logs["generator_loss"]),
               "reconstruction_loss": float(logs["reconstruction_loss"]),
               "mean_max_q_test": float(q_test.max(1).mean()),
               "clusters_used": int(len(np.unique(q_test.argmax(1))))}
        if supervised:
            row.update(validation_error=classification_error(q_val, y_val),
                       test_error=classification_error(q_test, y_test))
            labels = None
        else:
            labels = cluster_labels(q_val, y_val)
            # on the validation split alone (labels from it, error on it): what the choices are made on
            row.update(cluster_error_validation=cluster_error(q_val, y_val, q_val, y_val),
                       cluster_error=cluster_error(q_val, y_val, q_test, y_test),
                       cluster_error_majority=cluster_error(q_val, y_val, q_test, y_test, "majority"))
        row["content_follows_y"] = content_follows_y(model, z_test[styles], classify, labels)["share"]
        rows.append(row)
        print(json.dumps(row), flush=True)
        (out / f"{args.variant}.json").write_text(json.dumps(
            {"args": vars(args), "runtime": runtime_info(), "epochs": rows}, indent=1) + "\n")

    model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, verbose=0,
              callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=measure)])
    _, z_fit = model.encode(x_fit[:10_000])
    _, z_test = model.encode(x_test)
    leak = style_leak(z_fit, y_fit[:10_000], z_test, y_test)
    (out / f"{args.variant}.json").write_text(json.dumps(
        {"args": vars(args), "runtime": runtime_info(), "epochs": rows, "style_leak": leak}, indent=1) + "\n")
    print("style leak", leak)


if __name__ == "__main__":
    main()
