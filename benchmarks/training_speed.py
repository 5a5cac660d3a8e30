"""Training speed of the project's models against a plain Keras 3 port, in one process run.

The reference is written the obvious way: a `keras.Model` whose `call` adds the KL term with
`add_loss`, a sigmoid output, `compile(loss=...)` and `model.fit` on NumPy arrays with default
settings. Ours is `aae.models.VAE` / `Autoencoder` as the notebooks use them: BCE from logits
in a custom `train_step`, `steps_per_execution`, and `set_precision("auto")` (bfloat16 arithmetic
on CPUs with native bfloat16, float32 weights and losses). The two sides
alternate, several repeats; the script prints samples/s, the ratio, the test loss each reached
and the achieved GFLOP/s as a fraction of this machine's float32 GEMM rate at the first layer's
shape, and writes it all to results/benchmarks.json.

    python benchmarks/training_speed.py [--backend jax] [--epochs 5] [--repeats 3] [--levers]

`--backend` picks the Keras backend (default $KERAS_BACKEND, else TensorFlow); both sides run on
it, and its results go under its own key in benchmarks.json. `--levers` also times each lever
alone on our VAE (float32 vs bfloat16, steps_per_execution, XLA where the backend has a choice),
so the ones that did not help are on record too.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/common.py

from common import select_backend  # noqa: E402  (sets KERAS_BACKEND before keras is imported)

BACKEND = select_backend()

import keras  # noqa: E402
from keras import layers, ops  # noqa: E402

from common import (ROOT, dense_train_flops, dtype_policy, gemm_gflops, machine_info,  # noqa: E402
                    update_json, update_readme_speed)
from aae.data import load_mnist  # noqa: E402
from aae.layers import Sampling  # noqa: E402
from aae.models import VAE, Autoencoder, mlp_decoder, mlp_encoder  # noqa: E402
from aae.runtime import compile_options, set_precision  # noqa: E402

NOTEBOOK_SPE = 32  # steps_per_execution the notebooks use


class ReferenceVAE(keras.Model):
    """784-512-2 VAE as a plain port writes it: add_loss for KL, sigmoid output, BCE loss."""

    def __init__(self, seed=0):
        super().__init__()
        self.hidden = layers.Dense(512, activation="relu")
        self.z_mean = layers.Dense(2)
        self.z_log_var = layers.Dense(2)
        self.sampling = Sampling(seed=seed)
        self.dec_hidden = layers.Dense(512, activation="relu")
        self.out = layers.Dense(784, activation="sigmoid")

    def call(self, x):
        h = self.hidden(x)
        z_mean, z_log_var = self.z_mean(h), self.z_log_var(h)
        kl = -0.5 * ops.sum(1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)
        self.add_loss(ops.mean(kl))
        return self.out(self.dec_hidden(self.sampling([z_mean, z_log_var])))


def reference_vae(seed):
    keras.utils.set_random_seed(seed)
    model = ReferenceVAE(seed)
    model.compile(optimizer="adam", loss=lambda x, p: 784 * keras.losses.binary_crossentropy(x, p))
    return model, True


def reference_ae(seed):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((784,)), layers.Dense(32, activation="relu"),
                              layers.Dense(784, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model, True


def _ours(build, seed, spe, precision, compile_kw):
    """Build with the notebooks' settings: dtype policy from `set_precision`, steps_per_execution."""
    keras.utils.set_random_seed(seed)
    with dtype_policy(precision):
        model = build(seed)
    options = {**compile_options(spe), **compile_kw}
    model.compile(optimizer=keras.optimizers.Adam(1e-3), **options)
    return model, False


def ours_vae(seed, spe=NOTEBOOK_SPE, precision="auto", **compile_kw):
    return _ours(lambda s: VAE(mlp_encoder(2, [512]), mlp_decoder(2, [512]), seed=s),
                 seed, spe, precision, compile_kw)


def ours_ae(seed, spe=NOTEBOOK_SPE, precision="auto", **compile_kw):
    return _ours(lambda s: Autoencoder(mlp_encoder(32, [], variational=False, code_activation="relu"),
                                       mlp_decoder(32, [])), seed, spe, precision, compile_kw)


class EpochTimer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.t0)

    def on_train_begin(self, logs=None):
        self.times = []


def train(make, seed, x, xt, epochs, batch_size, test_scale):
    """Train a fresh model; return (samples/s over epochs after the first, test loss)."""
    model, supervised = make(seed)
    timer = EpochTimer()
    fit_args = (x, x) if supervised else (x,)
    model.fit(*fit_args, epochs=epochs, batch_size=batch_size, verbose=0, callbacks=[timer])
    steady = timer.times[1:] or timer.times  # the first epoch includes tracing
    rate = len(x) / statistics.median(steady)
    res = model.evaluate(*((xt, xt) if supervised else (xt,)), batch_size=1000, verbose=0, return_dict=True)
    # reference BCE is already x784 for the VAE; the AE compares per-pixel BCE
    loss = res["loss"] if "reconstruction_loss" not in res or test_scale == 1 else res["reconstruction_loss"]
    return rate, float(loss)


def compare(name, ref, ours, sizes, batch_size, x, xt, epochs, repeats, gemm):
    rates = {"reference": [], "ours": []}
    losses = {"reference": [], "ours": []}
    for r in range(repeats):
        order = [("reference", ref), ("ours", ours)]
        for side, make in (order if r % 2 == 0 else order[::-1]):
            rate, loss = train(make, r, x, xt, epochs, batch_size, 1 if name == "vae" else 0)
            rates[side].append(rate), losses[side].append(loss)
            print(f"  {name} repeat {r + 1} {side:9s}: {rate:8,.0f} samples/s  test loss {loss:.4f}", flush=True)
    flops = dense_train_flops(sizes, batch_size) / batch_size
    out = {"epochs": epochs, "repeats": repeats, "batch_size": batch_size}
    for side in rates:
        rate = statistics.median(rates[side])
        out[side] = {"samples_per_second": rate, "samples_per_second_all": rates[side],
                     "test_loss_mean": statistics.mean(losses[side]), "test_losses": losses[side],
                     "gflops": rate * flops / 1e9, "fraction_of_gemm": rate * flops / 1e9 / gemm}
    out["speedup"] = out["ours"]["samples_per_second"] / out["reference"]["samples_per_second"]
    out["test_loss_difference"] = out["ours"]["test_loss_mean"] - out["reference"]["test_loss_mean"]
    print(f"{name}: ours {out['ours']['samples_per_second']:,.0f} vs reference "
          f"{out['reference']['samples_per_second']:,.0f} samples/s -> {out['speedup']:.2f}x; "
          f"test loss ours {out['ours']['test_loss_mean']:.4f} vs {out['reference']['test_loss_mean']:.4f}; "
          f"{out['ours']['gflops']:.1f} vs {out['reference']['gflops']:.1f} GFLOP/s "
          f"({out['ours']['fraction_of_gemm']:.0%} vs {out['reference']['fraction_of_gemm']:.0%} of GEMM)",
          flush=True)
    return out


def levers(x, xt, batch_size, epochs, repeats):
    """Each lever alone on our VAE next to the plain reference: `repeats` rounds in one process,
    the order rotated every round, the median rate of each reported with its ratio."""
    # JAX always compiles with XLA; PyTorch runs one step per call (see aae.runtime.compile_options).
    spes = [1] if BACKEND == "torch" else [1, NOTEBOOK_SPE]
    xla = [False, True] if BACKEND == "tensorflow" else [False]
    variants = {"reference (plain Keras port)": reference_vae}
    for precision in ("float32", "mixed_bfloat16"):
        for spe in spes:
            for jit in xla:
                label = f"{precision}, steps_per_execution={spe}{', XLA' if jit else ''}"
                variants[label] = (lambda s, p=precision, k=spe, j=jit:
                                   ours_vae(s, spe=k, precision=p, **({"jit_compile": True} if j else {})))
    names = list(variants)
    rates, losses = {n: [] for n in names}, {n: [] for n in names}
    for r in range(repeats):
        for label in names[r % len(names):] + names[:r % len(names)]:
            rate, loss = train(variants[label], r, x, xt, epochs, batch_size, 1)
            rates[label].append(rate), losses[label].append(loss)
            print(f"  lever round {r + 1} {label:45s}: {rate:8,.0f} samples/s  test loss {loss:.2f}", flush=True)
    ref = statistics.median(rates[names[0]])
    out = {}
    for label in names:
        rate = statistics.median(rates[label])
        out[label] = {"samples_per_second": rate, "samples_per_second_all": rates[label],
                      "ratio_to_reference": rate / ref, "test_loss_mean": statistics.mean(losses[label])}
        print(f"lever {label:45s}: median {rate:8,.0f} samples/s = {rate / ref:.2f}x reference, "
              f"test loss {out[label]['test_loss_mean']:.2f}", flush=True)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("tensorflow", "jax", "torch"),
                        help="Keras backend for both sides (default: $KERAS_BACKEND, else tensorflow)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per training run")
    parser.add_argument("--repeats", type=int, default=3, help="alternating repeats per side")
    parser.add_argument("--train-size", type=int, default=None, help="training images (default all)")
    parser.add_argument("--levers", action="store_true", help="also time each speed lever alone")
    parser.add_argument("--lever-epochs", type=int, default=3, help="epochs per lever run")
    parser.add_argument("--output", type=Path, default=ROOT / "results" / "benchmarks.json")
    args = parser.parse_args(argv)

    (x, _), (xt, _) = load_mnist(train_size=args.train_size)
    info = machine_info()
    info["dtype_policy_auto"] = set_precision("auto")
    set_precision("float32")
    gemm = gemm_gflops(128, 784, 512)
    print(f"machine: {info}\nfloat32 GEMM (128x784 @ 784x512): {gemm:.1f} GFLOP/s", flush=True)
    report = {"machine": info, "gemm_gflops_128x784x512": gemm,
              "vae": compare("vae", reference_vae, ours_vae, [784, 512, 4, 2, 512, 784], 128,
                             x, xt, args.epochs, args.repeats, gemm),
              "autoencoder": compare("autoencoder", reference_ae, ours_ae, [784, 32, 784], 256,
                                     x, xt, args.epochs, args.repeats, gemm)}
    if args.levers:
        report["vae_levers"] = levers(x, xt, 128, args.lever_epochs, args.repeats)
    for key, value in report.items():
        update_json(args.output, BACKEND, key, value)
    print(f"written to {args.output}")
    if args.output.resolve() == (ROOT / "results" / "benchmarks.json").resolve():
        update_readme_speed(args.output)


if __name__ == "__main__":
    main()
