"""Updates per second of the adversarial autoencoder: one compiled train_step vs the common
Keras pattern (per batch `encoder.predict`, two `discriminator.train_on_batch` calls and one
`train_on_batch` on a stacked autoencoder + frozen-discriminator model).

Same networks on both sides: 512-512 LeakyReLU encoder and decoder, 512-256 discriminator,
8-D Gaussian prior, batch 128. One "update" = one batch through every phase. The two sides
alternate within one process, `--repeats` times, and the median rate is reported.

    .venv/bin/python benchmarks/aae_speed.py              # full run, writes results/benchmarks.json
    .venv/bin/python benchmarks/aae_speed.py --backend jax    # the same on JAX
    .venv/bin/python benchmarks/aae_speed.py --repeats 1 --steps 32 --no-write   # smoke test

The compiled side is timed in several variants (steps_per_execution 1 or N, with or without XLA
`jit_compile` on TensorFlow, and bfloat16 arithmetic on CPUs that have it); the headline ratio is
the one of the variant notebook 04 uses (`NOTEBOOK_VARIANT`), the others are reported beside it.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import select_backend  # noqa: E402  (sets KERAS_BACKEND before keras)

BACKEND = select_backend()

import numpy as np  # noqa: E402

from aae.runtime import compile_options, cpu_has_bf16  # noqa: E402
from benchmarks.common import (ROOT, dense_train_flops, dtype_policy, gemm_gflops,  # noqa: E402
                               machine_info, update_json, update_readme_speed)

BATCH, LATENT, HIDDEN, D_HIDDEN, PIXELS = 128, 8, (512, 512), (512, 256), 784
ENC = [PIXELS, *HIDDEN, LATENT]
DEC = [LATENT, *HIDDEN, PIXELS]
DISC = [LATENT, *D_HIDDEN, 1]
# What notebook 04 uses (jit_compile=True, steps_per_execution=1): the ratio reported is this one's.
# On JAX every step is XLA-compiled anyway; PyTorch gets jit_compile=False (aae.runtime).
NOTEBOOK_VARIANT = "compiled_spe1" if BACKEND == "torch" else "compiled_spe1_xla"


def forward_flops(sizes, batch):
    """FLOPs of a forward pass through a dense stack."""
    return sum(2 * batch * i * o for i, o in zip(sizes[:-1], sizes[1:]))


def flops_compiled(b=BATCH):
    """One AdversarialAutoencoder.train_step: AE update, D on 2b codes, G through frozen D."""
    ae = dense_train_flops(ENC + DEC[1:], b)
    d = dense_train_flops(DISC, 2 * b)
    g = dense_train_flops(ENC, b) + 2 * forward_flops(DISC, b)  # D: forward + input gradient
    return ae + d + g


def flops_common(b=BATCH):
    """encoder.predict, D on real and on fake, stacked model (AE + frozen D) in one update."""
    return (forward_flops(ENC, b) + 2 * dense_train_flops(DISC, b)
            + dense_train_flops(ENC + DEC[1:], b) + 2 * forward_flops(DISC, b))


def build_compiled(steps_per_execution, jit_compile, precision="float32", seed=0):
    import keras
    from aae.adversarial import adversarial_autoencoder
    from aae.priors import GaussianPrior

    keras.utils.set_random_seed(seed)
    with dtype_policy(precision):
        model = adversarial_autoencoder(GaussianPrior(LATENT), HIDDEN, D_HIDDEN, seed=seed)
    model.compile(**compile_options(steps_per_execution, jit_compile))
    return model


def build_common(seed=0):
    """The widespread recipe: compile D, freeze it, compile a stacked model around it."""
    import keras
    from aae.adversarial import adversarial_autoencoder
    from aae.priors import GaussianPrior

    keras.utils.set_random_seed(seed)
    # the same three networks as ours, trained the common way
    built = adversarial_autoencoder(GaussianPrior(LATENT), HIDDEN, D_HIDDEN, seed=seed)
    encoder, decoder, disc = built.encoder, built.decoder, built.discriminator
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    disc.compile(keras.optimizers.Adam(1e-3, beta_1=0.5), loss=bce)
    x = keras.Input((PIXELS,))
    z = encoder(x)
    stacked = keras.Model(x, [decoder(z), disc(z)])
    stacked.compile(keras.optimizers.Adam(1e-3), loss=[bce, bce], loss_weights=[1.0, 1.0])
    return encoder, disc, stacked


def run_compiled(model, x, steps):
    t0 = time.perf_counter()
    model.fit(x[:steps * BATCH], batch_size=BATCH, epochs=1, verbose=0, shuffle=False)
    return steps / (time.perf_counter() - t0)


def run_common(nets, x, steps, rng):
    encoder, disc, stacked = nets
    ones, zeros = np.ones((BATCH, 1), "float32"), np.zeros((BATCH, 1), "float32")
    t0 = time.perf_counter()
    for i in range(steps):
        xb = x[i * BATCH:(i + 1) * BATCH]
        z_fake = encoder.predict(xb, verbose=0)
        z_real = rng.standard_normal((BATCH, LATENT)).astype("float32")
        disc.trainable = True
        disc.train_on_batch(z_real, ones)
        disc.train_on_batch(z_fake, zeros)
        disc.trainable = False
        stacked.train_on_batch(xb, [xb, ones])
    return steps / (time.perf_counter() - t0)


def check_common_freezes_disc(nets, x, rng):
    """The stacked update must leave D alone and D's own update must move it (Keras 3 traces
    the trainable set on first call, so the freeze is easy to get wrong)."""
    encoder, disc, stacked = nets
    run_common(nets, x, 1, rng)  # trace all three functions in the right trainable state
    w = [v.copy() for v in disc.get_weights()]
    stacked.train_on_batch(x[:BATCH], [x[:BATCH], np.ones((BATCH, 1), "float32")])
    assert all(np.array_equal(a, b) for a, b in zip(w, disc.get_weights())), "D moved in stacked"
    disc.trainable = True  # as run_common does before D's own updates (JAX needs it set)
    disc.train_on_batch(encoder.predict(x[:BATCH], verbose=0), np.zeros((BATCH, 1), "float32"))
    disc.trainable = False
    assert not all(np.array_equal(a, b) for a, b in zip(w, disc.get_weights())), "D frozen"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=("tensorflow", "jax", "torch"),
                   help="Keras backend for both sides (default: $KERAS_BACKEND, else tensorflow)")
    p.add_argument("--repeats", type=int, default=5, help="alternating rounds (median reported)")
    p.add_argument("--steps", type=int, default=128, help="updates per round and side")
    p.add_argument("--steps-per-execution", type=int, default=32,
                   help="batches per compiled call (each variant is also timed at 1)")
    p.add_argument("--no-xla", action="store_true", help="skip the XLA (jit_compile) variants")
    p.add_argument("--no-write", action="store_true", help="print only; leave benchmarks.json")
    p.add_argument("--output", type=Path, default=ROOT / "results" / "benchmarks.json",
                   help="JSON file to merge the results into (the README table follows only the default)")
    args = p.parse_args(argv)
    spe = args.steps_per_execution
    steps = max(spe, args.steps // spe * spe)  # fit runs whole executions

    rng = np.random.default_rng(0)
    x = (rng.uniform(size=(steps * BATCH, PIXELS)) < 0.13).astype("float32")  # MNIST-like ink
    # The levers tried: several batches per compiled call, and XLA compilation of the step.
    # JAX compiles every step with XLA (jit_compile=False would run it op by op); PyTorch runs
    # one step per call, eagerly. Only TensorFlow has both choices to time.
    jits = {"tensorflow": [False] if args.no_xla else [False, True], "jax": [True]}.get(BACKEND, [False])
    spes = [1] if BACKEND == "torch" else [1, spe]
    sides = {f"compiled_spe{k}{'_xla' if jit else ''}": build_compiled(k, jit) for jit in jits for k in spes}
    if cpu_has_bf16():  # bfloat16 arithmetic, float32 weights, codes and losses
        sides.update({f"compiled_spe1{'_xla' if jit else ''}_bf16": build_compiled(1, jit, "mixed_bfloat16")
                      for jit in jits})
    common = build_common()
    check_common_freezes_disc(common, x, rng)
    for model in sides.values():  # trace and warm up
        run_compiled(model, x, spe)
    run_common(common, x, 2, rng)

    rates = {name: [] for name in [*sides, "common"]}
    for r in range(args.repeats):
        for name, model in sides.items():
            rates[name].append(run_compiled(model, x, steps))
        rates["common"].append(run_common(common, x, steps, rng))
        print(f"round {r + 1}/{args.repeats}: " + ", ".join(
            f"{k} {v[-1]:.1f}/s" for k, v in rates.items()), flush=True)
    med = {k: float(np.median(v)) for k, v in rates.items()}

    gemm, gemm_chain = gemm_gflops(), gemm_gflops(distinct_right=True)
    fast = NOTEBOOK_VARIANT if NOTEBOOK_VARIANT in sides else max(sides, key=med.get)
    gf_fast = med[fast] * flops_compiled() / 1e9
    gf_common = med["common"] * flops_common() / 1e9
    result = {
        "updates_per_s": {k: round(v, 2) for k, v in med.items()},
        "best_compiled_variant": max(sides, key=med.get),
        "reported_variant": fast,
        "ratio_compiled_vs_common": round(med[fast] / med["common"], 2),
        "ratio_by_variant": {k: round(med[k] / med["common"], 2) for k in sides},
        "gflop_per_update": {"compiled": flops_compiled() / 1e9, "common": flops_common() / 1e9},
        "achieved_gflops": {"compiled": round(gf_fast, 1), "common": round(gf_common, 1)},
        "gemm_gflops": round(gemm, 1), "chained_gemm_gflops": round(gemm_chain, 1),
        "fraction_of_gemm": {"compiled": round(gf_fast / gemm, 4), "common": round(gf_common / gemm, 4)},
        "fraction_of_chained_gemm": {"compiled": round(gf_fast / gemm_chain, 4),
                                     "common": round(gf_common / gemm_chain, 4)},
        "settings": {"batch": BATCH, "latent_dim": LATENT, "hidden": HIDDEN, "d_hidden": D_HIDDEN,
                     "steps": steps, "repeats": args.repeats, "steps_per_execution": spe},
        "machine": machine_info(),
    }
    print(f"\nupdates/s (median of {args.repeats}): " + ", ".join(f"{k} {v:.1f}" for k, v in med.items()))
    print(f"ratio {fast} (the notebook's settings) / common: {result['ratio_compiled_vs_common']:.2f}x; "
          + ", ".join(f"{k} {v:.2f}x" for k, v in result["ratio_by_variant"].items()))
    print(f"achieved GFLOP/s: compiled {gf_fast:.1f}, common {gf_common:.1f}; "
          f"gemm_gflops() {gemm:.1f} -> {gf_fast / gemm:.1%} / {gf_common / gemm:.1%}; "
          f"chained GEMM {gemm_chain:.1f} -> {gf_fast / gemm_chain:.1%} / {gf_common / gemm_chain:.1%}")
    if not args.no_write:
        update_json(args.output, BACKEND, "adversarial_autoencoder", result)
        if args.output.resolve() == (ROOT / "results" / "benchmarks.json").resolve():
            update_readme_speed(args.output)
        print(f"wrote {args.output}")
    return result


if __name__ == "__main__":
    main()
