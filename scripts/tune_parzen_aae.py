"""Train one 8-D Gaussian AAE (notebook 04's quantitative model) and print its Parzen scores.

For choosing the settings of notebook 04's "long" setting on held-out data: the score that
decides is the mean Parzen log-likelihood of the last 10,000 training images (never trained on)
at the sigma that is best for them; the test set is not touched unless `--test` is given. Then,
as notebook 04 does, the test set is scored once at that sigma and the mean and its standard
error are recorded, and (up to) 100 of the digits are drawn to <out>/<name>_samples.png. Writes
<out>/metrics/<name>.json.

    KERAS_BACKEND=jax python scripts/tune_parzen_aae.py --name scale5 --prior-scale 5 --epochs 10

Long runs (the published reproduction's 200 epochs take hours on a CPU) survive being stopped:
after every epoch the weights, the optimizers' state and the log so far go to
<out>/<name>.checkpoint.npz, and running the same command again carries on from there (a run
with other settings under the same name is refused). The finished run removes its checkpoint.
A resumed run is not bit-for-bit the uninterrupted one (the batches are shuffled afresh).
`--eval-every k` scores the held-out images every k epochs, so the log shows whether the score
is still rising.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from aae.adversarial import adversarial_autoencoder  # noqa: E402
from aae.data import load_mnist  # noqa: E402
from aae.files import atomic_path  # noqa: E402
from aae.metrics import mean_and_stderr, parzen_log_likelihood, select_parzen_sigma, write_metrics  # noqa: E402
from aae.phases import adam  # noqa: E402
from aae.plotting import image_grid, save_figure  # noqa: E402
from aae.priors import GaussianPrior  # noqa: E402
from aae.runtime import compile_options  # noqa: E402

SIGMAS = [0.10, 0.12, 0.14, 0.16, 0.18, 0.20, 0.22, 0.25, 0.30]
# Settings that do not change what is trained: a checkpoint made under other values still fits.
NOT_TRAINING = {"name", "out", "test", "eval_every", "stop_after"}


def validation_scores(model, x_val, n_samples, seed):
    """(best validation mean, its sigma, mean by sigma) for `n_samples` digits from the prior."""
    samples = model.generate(n_samples, seed=seed)
    sigma, scores = select_parzen_sigma(x_val, samples, SIGMAS)
    return float(max(scores)), sigma, [float(s) for s in scores], samples


class Checkpoint(keras.callbacks.Callback):
    """After each epoch: append its losses (and every `eval_every` epochs the held-out Parzen
    score) to `log`, then save weights, optimizer state and `log` to `path`, atomically."""

    def __init__(self, path, log, x_val, args):
        super().__init__()
        self.path, self.log, self.x_val, self.args = path, log, x_val, args
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        log = self.log
        log["train_seconds"] += time.perf_counter() - self.started
        for k, v in (logs or {}).items():
            log["history"].setdefault(k, []).append(float(v))
        done = epoch + 1
        if self.args.eval_every and done % self.args.eval_every == 0 and done < self.args.epochs:
            best, sigma, _, _ = validation_scores(self.model, self.x_val, self.args.samples, self.args.seed)
            log["validation_curve"].append({"epoch": done, "validation_parzen_nats": best, "sigma": sigma})
            print(f"epoch {done}: held-out Parzen {best:.1f} nats (sigma {sigma:.2f})", flush=True)
        log["epochs_done"] = done
        values = [np.asarray(v) for v in self.model.variables + self.model.optimizer.variables]
        with atomic_path(self.path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, log=json.dumps(log), *values)
        self.started = time.perf_counter()


def restore(model, path, settings):
    """Load `path` into the compiled `model`; return its log. Refuses a checkpoint of other settings."""
    with np.load(path) as data:
        log = json.loads(str(data["log"]))
        if log["settings"] != settings:
            changed = sorted(k for k in settings if log["settings"].get(k) != settings[k])
            raise SystemExit(f"{path} is a checkpoint of a run with other settings ({', '.join(changed)} "
                             f"differ). Run with its settings to carry it on, or delete the file (or pick "
                             f"another --name) to start afresh.")
        model.optimizer.build(model.trainable_variables)
        variables = model.variables + model.optimizer.variables
        arrays = [data[f"arr_{i}"] for i in range(len(data.files) - 1)]
    if len(arrays) != len(variables) or any(a.shape != tuple(v.shape) for a, v in zip(arrays, variables)):
        raise SystemExit(f"{path} does not fit this model ({len(arrays)} arrays for {len(variables)} "
                         f"variables); delete it to start afresh.")
    for v, a in zip(variables, arrays):
        v.assign(a)
    return log


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", required=True)
    p.add_argument("--out", default="results/tuning-parzen")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--hidden", type=int, nargs="+", default=[512, 512])
    p.add_argument("--d-hidden", type=int, nargs="+", default=[512, 256])
    p.add_argument("--dropout", type=float, default=0.0, help="encoder and decoder hidden layers")
    p.add_argument("--d-dropout", type=float, default=0.0, help="discriminator hidden layers")
    p.add_argument("--prior-scale", type=float, default=1.0)
    p.add_argument("--code-batch-norm", action="store_true",
                   help="standardise each axis of a batch of codes to the prior's std")
    p.add_argument("--lr", type=float, default=2e-3, help="reconstruction")
    p.add_argument("--d-lr", type=float, default=1e-3)
    p.add_argument("--g-lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--samples", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-size", type=int, default=None,
                   help="train on the first N of the 50,000 fitting images (default: all)")
    p.add_argument("--eval-every", type=int, default=0, metavar="K",
                   help="score the held-out images every K epochs too (0: only at the end)")
    p.add_argument("--stop-after", type=int, default=None, metavar="E",
                   help="stop this sitting after epoch E, keeping the checkpoint; run again to carry on")
    p.add_argument("--test", action="store_true",
                   help="score the test set at the held-out images' best sigma (notebook 04's number)")
    args = p.parse_args(argv)
    if args.epochs < 1 or args.eval_every < 0 or (args.train_size is not None and args.train_size < 1):
        p.error(f"--epochs and --train-size must be >= 1 and --eval-every >= 0, got {args.epochs}, "
                f"{args.train_size} and {args.eval_every}")

    keras.utils.set_random_seed(args.seed)
    (x_train, _), (x_test, _) = load_mnist(os.environ.get("AAE_DATA_DIR"))
    x_fit, x_val = x_train[:-10_000][:args.train_size], x_train[-10_000:]
    model = adversarial_autoencoder(GaussianPrior(8, args.prior_scale), args.hidden, args.d_hidden,
                                    seed=args.seed, dropout=args.dropout, d_dropout=args.d_dropout,
                                    code_batch_norm=args.code_batch_norm)
    steps = args.epochs * -(-len(x_fit) // args.batch_size)
    model.compile(ae_optimizer=adam(args.lr, steps), d_optimizer=adam(args.d_lr, steps),
                  g_optimizer=adam(args.g_lr, steps), **compile_options(1, True))

    settings = {k: v for k, v in vars(args).items() if k not in NOT_TRAINING}
    checkpoint = Path(args.out) / f"{args.name}.checkpoint.npz"
    log = {"settings": settings, "epochs_done": 0, "train_seconds": 0.0, "segments": 0,
           "history": {}, "validation_curve": []}
    if checkpoint.exists():
        log = restore(model, checkpoint, settings)
        print(f"carrying on from epoch {log['epochs_done']} of {args.epochs} ({checkpoint})", flush=True)
    log["segments"] += 1
    until = args.epochs if args.stop_after is None else min(args.stop_after, args.epochs)
    if log["epochs_done"] < until:
        model.fit(x_fit, batch_size=args.batch_size, epochs=until, initial_epoch=log["epochs_done"],
                  callbacks=[Checkpoint(checkpoint, log, x_val, args)], verbose=2)
    if until < args.epochs:
        print(f"stopped after epoch {log['epochs_done']} of {args.epochs}; the same command without "
              f"--stop-after carries on from {checkpoint}")
        return

    start = time.perf_counter()
    best, sigma, scores, samples = validation_scores(model, x_val, args.samples, args.seed)
    log["validation_curve"].append({"epoch": args.epochs, "validation_parzen_nats": best, "sigma": sigma})
    result = {"validation_parzen_nats": best, "sigma": sigma, "seconds": log["train_seconds"],
              "validation_mean_by_sigma": dict(zip(map(str, SIGMAS), scores)),
              "final_losses": {k: v[-1] for k, v in log["history"].items()}}
    if log["segments"] > 1:
        result["segments"] = log["segments"]  # sittings the training took (stopped and carried on)
    if len(log["validation_curve"]) > 1:
        result["validation_curve"] = log["validation_curve"]
    if args.test:
        test_mean, test_stderr = mean_and_stderr(parzen_log_likelihood(x_test, samples, sigma))
        result["parzen"] = {"mean_nats": test_mean, "stderr_nats": test_stderr, "sigma": sigma,
                            "samples": len(samples), "test_images": len(x_test),
                            "validation_images": len(x_val), "seconds": time.perf_counter() - start}
        figure = image_grid(samples, min(10, math.isqrt(len(samples))), title=f"8-D AAE, {args.epochs} epochs: digits decoded from prior samples")
        print("wrote", save_figure(figure, f"{args.name}_samples", args.out))
    print(result)
    print("wrote", write_metrics(args.name, result, vars(args), results_dir=args.out))
    checkpoint.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
