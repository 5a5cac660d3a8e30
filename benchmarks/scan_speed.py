"""Training steps scanned on the device (`aae.phases.ScannedSteps`, JAX) against Keras's own loop.

With `steps_per_execution = k`, Keras 3.15's JAX trainer runs k single jitted steps from Python;
ours runs them as one jitted `jax.lax.scan`. Both sides train the same model with the same k in
one process on the same backend, alternating `--repeats` times (median reported): the VAE
784-512-2 (batch 128), the autoencoder 784-32 (batch 256) and the 8-D adversarial autoencoder
512-512 / 512-256 (batch 128), the scan with each `--unrolls` value (`jax.lax.scan`'s `unroll`;
"k" is k). Prints steps/s and the ratios scan / Keras loop; writes them to results/benchmarks.json
under jax.scanned_steps, and rewrites the speed block of docs/speed.md from it.

    .venv/bin/python benchmarks/scan_speed.py                 # full run (JAX), writes benchmarks.json
    .venv/bin/python benchmarks/scan_speed.py --quick --no-write   # smoke test, small settings
    .venv/bin/python benchmarks/scan_speed.py --notebook06    # also notebook 06's long-setting model

`--notebook06` also times one model of notebook 06's "long" setting (semi-supervised AAE, 1000-1000
networks, batch 100, 100 labels) per epoch on `--notebook06-images` images, both ways, and projects
the setting's training time (8 models x 40 epochs on 40,000 images; evaluation not counted).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("KERAS_BACKEND", "jax")  # the scan is JAX's; --backend still wins

from benchmarks.common import select_backend  # noqa: E402  (sets KERAS_BACKEND before keras)

BACKEND = select_backend()

import numpy as np  # noqa: E402

from benchmarks.common import ROOT, machine_info, update_json, update_readme_speed  # noqa: E402

# notebook 06's "long" setting: 8 models (100 and 1,000 labels x seeds 0-2, clustering with 16
# and 30 clusters) x 40 epochs on the 50,000 - 10,000 held-out training images, batch 100
NB06_MODELS, NB06_EPOCHS, NB06_IMAGES, NB06_BATCH = 8, 40, 40_000, 100


def build(name, k, unroll=None, seed=0):
    """Model `name` compiled with steps_per_execution=k; unroll None: Keras's own loop."""
    import keras

    from aae.adversarial import adversarial_autoencoder
    from aae.models import VAE, Autoencoder, mlp_decoder, mlp_encoder
    from aae.phases import adam
    from aae.priors import GaussianPrior
    from aae.semisupervised import build_semisupervised_aae

    keras.utils.set_random_seed(seed)
    if name == "vae":
        model = VAE(mlp_encoder(2, [512]), mlp_decoder(2, [512]), seed=seed)
    elif name == "autoencoder":
        model = Autoencoder(mlp_encoder(32, [], variational=False, code_activation="relu"),
                            mlp_decoder(32, []))
    elif name == "adversarial_autoencoder":
        model = adversarial_autoencoder(GaussianPrior(8), (512, 512), (512, 256), seed=seed)
    else:  # notebook06: the semi-supervised AAE of notebook 06's long setting
        model = build_semisupervised_aae(10, 10, (1000, 1000), (1000, 1000), seed=seed)
    model.scan_steps = unroll is not None
    if unroll is not None:
        model.scan_unroll = unroll
    options = {"steps_per_execution": k, "jit_compile": True}
    if name == "adversarial_autoencoder":
        model.compile(**options)
    elif name == "notebook06":
        model.compile(adam(1e-3), adam(3e-4, beta_1=0.5), adam(3e-4, beta_1=0.5), adam(1e-3), **options)
    else:
        model.compile(keras.optimizers.Adam(1e-3), **options)
    return model


BATCH = {"vae": 128, "autoencoder": 256, "adversarial_autoencoder": 128, "notebook06": NB06_BATCH}


def data(name, steps, rng):
    """MNIST-like random images (13 % ink) for `steps` batches; notebook06: its dict input."""
    n = steps * BATCH[name]
    x = (rng.uniform(size=(n, 784)) < 0.13).astype("float32")
    if name != "notebook06":
        return (x,)
    from aae.semisupervised import semi_supervised_inputs

    labelled = (rng.uniform(size=(100, 784)) < 0.13).astype("float32")
    return semi_supervised_inputs(x, labelled, np.repeat(np.arange(10), 10), seed=0)


def timed_fit(model, args, name):
    """Seconds of one epoch over `args` (shuffle off; the function is already compiled)."""
    t0 = time.perf_counter()
    model.fit(*args, batch_size=BATCH[name], epochs=1, verbose=0, shuffle=False)
    return time.perf_counter() - t0


def unroll_value(u, k):
    return k if u == "k" else int(u)


def compare(name, k, unrolls, steps, repeats, rng):
    """{variant: median seconds per epoch of `steps` steps}, variants keras and scan_unroll<u>."""
    args = data(name, steps, rng)
    variants = {"keras_loop": None, **{f"scan_unroll{u}": unroll_value(u, k) for u in unrolls}}
    models, compile_s = {}, {}
    for variant, unroll in variants.items():
        models[variant] = build(name, k, unroll)
        warm = tuple(a[:k * BATCH[name]] if not isinstance(a, dict) else
                     {key: v[:k * BATCH[name]] for key, v in a.items()} for a in args)
        t0 = time.perf_counter()
        models[variant].fit(*warm, batch_size=BATCH[name], epochs=1, verbose=0, shuffle=False)
        compile_s[variant] = round(time.perf_counter() - t0, 2)  # first call: trace + compile
    seconds = {v: [] for v in variants}
    for r in range(repeats):
        for variant, model in models.items():
            seconds[variant].append(timed_fit(model, args, name))
        print(f"  {name} round {r + 1}/{repeats}: " + ", ".join(
            f"{v} {steps / s[-1]:.1f} steps/s" for v, s in seconds.items()), flush=True)
    for variant, model in models.items():
        if variant != "keras_loop":
            assert model._scan_traces == 1, (variant, model._scan_traces)  # the scan was taken
    med = {v: statistics.median(s) for v, s in seconds.items()}
    result = {"steps_per_s": {v: round(steps / s, 2) for v, s in med.items()},
              "ratio_scan_vs_keras_loop": {v: round(med["keras_loop"] / s, 3)
                                           for v, s in med.items() if v != "keras_loop"},
              "first_call_s": compile_s, "batch": BATCH[name], "steps": steps}
    best = max(result["ratio_scan_vs_keras_loop"], key=result["ratio_scan_vs_keras_loop"].get)
    result["best_unroll"] = best.removeprefix("scan_unroll")
    return result, med


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=("jax",), help="the scan is JAX's (default: jax)")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: k=4, 8 steps, 1 round, 2,000 notebook06 images")
    p.add_argument("--k", type=int, default=32, help="steps_per_execution on both sides")
    p.add_argument("--unrolls", nargs="+", default=["1", "4", "k"], help="scan unrolls to time")
    p.add_argument("--steps", type=int, default=512, help="steps per timed epoch (made a multiple of k)")
    p.add_argument("--repeats", type=int, default=5, help="alternating rounds (median reported)")
    p.add_argument("--models", nargs="+", default=list(BATCH)[:3], choices=list(BATCH)[:3])
    p.add_argument("--notebook06", action="store_true", help="also notebook 06's long-setting model")
    p.add_argument("--notebook06-images", type=int, default=NB06_IMAGES,
                   help="images per timed notebook06 epoch (the setting's: 40,000)")
    p.add_argument("--no-write", action="store_true", help="print only; leave benchmarks.json")
    p.add_argument("--output", type=Path, default=ROOT / "results" / "benchmarks.json")
    args = p.parse_args(argv)
    if BACKEND != "jax":
        raise SystemExit(f"the scanned steps are JAX's; got KERAS_BACKEND={BACKEND}")
    if args.quick:
        args.k, args.steps, args.repeats = 4, 8, 1
        args.notebook06_images = min(args.notebook06_images, 2000)
    k = args.k
    unrolls = list(dict.fromkeys("k" if unroll_value(u, k) == k else u for u in args.unrolls))
    steps = max(k, args.steps // k * k)
    rng = np.random.default_rng(0)

    results = {}
    for name in args.models:
        print(f"{name}: steps_per_execution={k}, {steps} steps per round", flush=True)
        results[name], _ = compare(name, k, unrolls, steps, args.repeats, rng)
    if args.notebook06:
        nb_steps = max(k, args.notebook06_images // NB06_BATCH // k * k)
        print(f"notebook06 (long setting's model): {nb_steps} steps per round", flush=True)
        res, med = compare("notebook06", k, unrolls, nb_steps, args.repeats, rng)
        per_epoch = {v: s * NB06_IMAGES / (nb_steps * NB06_BATCH) for v, s in med.items()}
        res["projected_long_setting_training_s"] = {
            v: round(s * NB06_MODELS * NB06_EPOCHS, 1) for v, s in per_epoch.items()}
        res["projection"] = (f"{NB06_MODELS} models x {NB06_EPOCHS} epochs x {NB06_IMAGES} images, "
                             "batch 100; training only (no evaluation, no compile)")
        results["notebook06"] = res

    print(f"\nsteps/s (median of {args.repeats}) and scan / Keras loop, steps_per_execution={k}:")
    for name, res in results.items():
        print(f"  {name}: " + ", ".join(f"{v} {r:,.1f}" for v, r in res["steps_per_s"].items())
              + " | ratios " + ", ".join(f"{v.removeprefix('scan_')} {r:.2f}x"
                                         for v, r in res["ratio_scan_vs_keras_loop"].items())
              + f" | best unroll {res['best_unroll']} | first call s {res['first_call_s']}")
        if "projected_long_setting_training_s" in res:
            print("  notebook06 long setting, projected training s: "
                  + ", ".join(f"{v} {s:,.0f}" for v, s in res["projected_long_setting_training_s"].items()))
    if not args.no_write:
        update_json(args.output, BACKEND, "scanned_steps",
                    {"models": results, "settings": {"steps_per_execution": k, "unrolls": unrolls,
                                                     "repeats": args.repeats, "quick": args.quick},
                     "machine": machine_info()})
        print(f"wrote {args.output}")
        if args.output.resolve() == (ROOT / "results" / "benchmarks.json").resolve():
            update_readme_speed(args.output)  # docs/speed.md's generated block, as its siblings do
    return results


if __name__ == "__main__":
    main()
