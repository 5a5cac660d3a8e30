"""Train one 8-D Gaussian AAE (notebook 04's quantitative model) and print its Parzen scores.

For choosing the settings of notebook 04's "long" setting on held-out data: the score that
decides is the mean Parzen log-likelihood of the last 10,000 training images (never trained on)
at the sigma that is best for them; the test set is not touched. Writes <out>/<name>.json.

    KERAS_BACKEND=jax python scripts/tune_parzen_aae.py --name scale5 --prior-scale 5 --epochs 10
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras  # noqa: E402

from aae.adversarial import adversarial_autoencoder  # noqa: E402
from aae.data import load_mnist  # noqa: E402
from aae.metrics import select_parzen_sigma, write_metrics  # noqa: E402
from aae.phases import adam  # noqa: E402
from aae.priors import GaussianPrior  # noqa: E402
from aae.runtime import compile_options  # noqa: E402

SIGMAS = [0.10, 0.12, 0.14, 0.16, 0.18, 0.20, 0.22, 0.25, 0.30]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", required=True)
    p.add_argument("--out", default="results/tuning-parzen")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--hidden", type=int, nargs="+", default=[512, 512])
    p.add_argument("--d-hidden", type=int, nargs="+", default=[512, 256])
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--prior-scale", type=float, default=1.0)
    p.add_argument("--code-batch-norm", action="store_true",
                   help="standardise each axis of a batch of codes to the prior's std")
    p.add_argument("--lr", type=float, default=2e-3, help="reconstruction")
    p.add_argument("--d-lr", type=float, default=1e-3)
    p.add_argument("--g-lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--samples", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    keras.utils.set_random_seed(args.seed)
    (x_train, _), _ = load_mnist(os.environ.get("AAE_DATA_DIR"))
    x_fit, x_val = x_train[:-10_000], x_train[-10_000:]
    model = adversarial_autoencoder(GaussianPrior(8, args.prior_scale), args.hidden, args.d_hidden,
                                    seed=args.seed, dropout=args.dropout, code_batch_norm=args.code_batch_norm)
    steps = args.epochs * -(-len(x_fit) // args.batch_size)
    model.compile(ae_optimizer=adam(args.lr, steps), d_optimizer=adam(args.d_lr, steps),
                  g_optimizer=adam(args.g_lr, steps), **compile_options(1, True))
    start = time.perf_counter()
    history = model.fit(x_fit, batch_size=args.batch_size, epochs=args.epochs, verbose=2)
    seconds = time.perf_counter() - start
    samples = model.generate(args.samples, seed=args.seed)
    sigma, scores = select_parzen_sigma(x_val, samples, SIGMAS)
    result = {"validation_parzen_nats": float(max(scores)), "sigma": sigma, "seconds": seconds,
              "validation_mean_by_sigma": dict(zip(map(str, SIGMAS), map(float, scores))),
              "final_losses": {k: float(v[-1]) for k, v in history.history.items()}}
    print(result)
    print("wrote", write_metrics(args.name, result, vars(args), results_dir=args.out))


if __name__ == "__main__":
    main()
