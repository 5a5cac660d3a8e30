"""Train one semi-supervised AAE (or AAE clustering) on MNIST and log its errors per epoch.

For the long runs and the learning-rate measurements behind notebook 06 (the notebook itself
runs the default setting). Every choice uses the validation split (last 10,000 training images);
the test error is logged per epoch for the curves only, and the reported test error is that of the
epoch with the best validation error. Writes <out>/<name>.json (per-epoch logs, final numbers).

    KERAS_BACKEND=jax python scripts/train_semisupervised.py --n-labels 100 --epochs 40 --seed 0 \
        --name long_100_labels_seed0

The defaults are the settings of the first long runs, now in results/long-semisupervised/earlier-recipe/
(z of 10, no batch norm, two separate discriminators, 2 x 1000 networks); `make long-results` runs notebook
06's present recipe (--latent-dim 5 --batch-norm --joint-style, 2 x 500 networks).
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

from aae.data import load_mnist  # noqa: E402
from aae.metrics import write_metrics  # noqa: E402
from aae.phases import cosine_rate  # noqa: E402
from aae.runtime import compile_options, runtime_info  # noqa: E402
from aae.semisupervised import (ErrorHistory, balanced_labelled_subset, build_semisupervised_aae,  # noqa: E402
                                classification_error, cluster_error, semi_supervised_inputs,
                                split_validation, style_leak)


def optimizer(kind, lr, steps, decay, momentum, beta_1):
    if decay.startswith("step"):  # step:<fraction>: lr / 10 after that fraction of the steps
        at = int(float(decay.split(":")[1]) * steps)
        lr = keras.optimizers.schedules.PiecewiseConstantDecay([at], [lr, lr / 10])
    else:  # the schedule notebook 06 uses (aae.phases.adam): cosine to 0, or constant
        lr = cosine_rate(lr, steps if decay == "cosine" else None)
    if kind == "sgd":
        return keras.optimizers.SGD(lr, momentum=momentum)
    return keras.optimizers.Adam(lr, beta_1=beta_1)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", required=True)
    p.add_argument("--out", default="results/long-semisupervised/metrics")
    p.add_argument("--n-labels", type=int, default=100, help="0: clustering (no labelled phase)")
    p.add_argument("--n-classes", type=int, default=10)
    p.add_argument("--latent-dim", type=int, default=10)
    p.add_argument("--hidden", type=int, nargs="+", default=[1000, 1000])
    p.add_argument("--d-hidden", type=int, nargs="+", default=[1000, 1000])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--train-size", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--opt", choices=["adam", "sgd"], default="adam")
    p.add_argument("--lr", type=float, default=1e-3, help="reconstruction")
    p.add_argument("--d-lr", type=float, default=3e-4)
    p.add_argument("--g-lr", type=float, default=3e-4)
    p.add_argument("--s-lr", type=float, default=1e-3)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--beta-1", type=float, default=0.5, help="Adam beta_1 of the discriminator and generator phases")
    p.add_argument("--decay", default="cosine", help="none, cosine or step:<fraction>")
    p.add_argument("--input-noise", type=float, default=0.3)
    p.add_argument("--dropout", type=float, default=0.0, help="encoder dropout after each hidden layer")
    p.add_argument("--patience", type=int, default=None)
    p.add_argument("--batch-norm", action="store_true", help="batch norm in the encoder, both heads included")
    p.add_argument("--joint-style", action="store_true", help="the style discriminator sees [y, z]")
    args = p.parse_args(argv)

    keras.utils.set_random_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = load_mnist(os.environ.get("AAE_DATA_DIR"))
    (x_fit, y_fit), (x_val, y_val) = split_validation(x_train, y_train, 10_000)
    x_fit, y_fit = x_fit[:args.train_size], y_fit[:args.train_size]
    supervised = args.n_labels > 0
    model = build_semisupervised_aae(args.latent_dim, args.n_classes, tuple(args.hidden),
                                     tuple(args.d_hidden), seed=args.seed,
                                     input_noise=args.input_noise, supervised=supervised,
                                     dropout=args.dropout, batch_norm=args.batch_norm,
                                     joint_style=args.joint_style)
    steps = args.epochs * -(-len(x_fit) // args.batch_size)
    opt = lambda lr, b1=args.beta_1: optimizer(args.opt, lr, steps, args.decay, args.momentum, b1)
    model.compile(ae_optimizer=opt(args.lr, 0.9), d_optimizer=opt(args.d_lr), g_optimizer=opt(args.g_lr),
                  s_optimizer=opt(args.s_lr, 0.9), **compile_options(1, True))
    if supervised:
        idx = balanced_labelled_subset(y_fit, args.n_labels, args.n_classes, seed=args.seed)
        x, y = semi_supervised_inputs(x_fit, x_fit[idx], y_fit[idx], seed=args.seed)
        sets = {"validation": (x_val, y_val), "test": (x_test, y_test)}
        tracker = ErrorHistory(sets, "validation", patience=args.patience)
        callbacks = [tracker]
    else:
        x, y, callbacks, tracker = x_fit, None, [], None
    partial = Path(args.out) / f"{args.name}.partial.json"
    partial.parent.mkdir(parents=True, exist_ok=True)

    def dump(epoch, logs):  # the per-epoch logs so far, so a run stopped early still leaves its numbers
        rows.append({"epoch": epoch + 1, "seconds": time.perf_counter() - start,
                     **{k: float(v) for k, v in (logs or {}).items()}})
        partial.write_text(json.dumps({"args": vars(args), "epochs": rows}, indent=1) + "\n")

    rows = []
    callbacks.append(keras.callbacks.LambdaCallback(on_epoch_end=dump))
    start = time.perf_counter()
    hist = model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, verbose=2,
                     callbacks=callbacks)
    seconds = time.perf_counter() - start
    q_test, z_test = model.encode(x_test)
    q_val, _ = model.encode(x_val)
    _, z_fit = model.encode(x_fit[:10_000])
    result = {"args": vars(args), "seconds": seconds, "epochs_run": len(hist.history["generator_loss"]),
              "history": {k: [float(v) for v in vs] for k, vs in hist.history.items()},
              "mean_max_q_test": float(q_test.max(1).mean()),
              "style_leak": style_leak(z_fit, y_fit[:10_000], z_test, y_test)}
    if supervised:
        result.update(best_epoch=tracker.best_epoch + 1, best_validation_error=tracker.best,
                      test_error=classification_error(q_test, y_test),
                      validation_error=classification_error(q_val, y_val))
    else:
        result.update(test_error=cluster_error(q_val, y_val, q_test, y_test),
                      test_error_majority=cluster_error(q_val, y_val, q_test, y_test, "majority"),
                      clusters_used=int(len(np.unique(q_test.argmax(1)))))
    path = write_metrics(args.name, result, vars(args), results_dir=str(Path(args.out).parent))
    partial.unlink(missing_ok=True)  # the run finished: its metrics file holds everything the partial log did
    print(json.dumps({k: v for k, v in result.items() if k != "history"}, indent=1))
    print("wrote", path, "runtime", runtime_info())


if __name__ == "__main__":
    main()
