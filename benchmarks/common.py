"""Shared pieces of the benchmark scripts: backend choice, machine description, the float32 GEMM
rate, and the README speed table (one section per Keras backend measured)."""
from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from aae.files import atomic_path

ROOT = Path(__file__).resolve().parent.parent
BACKEND_NAMES = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}


def select_backend(argv=None):
    """Set KERAS_BACKEND from a `--backend NAME` argument; call before anything imports keras."""
    argv = sys.argv[1:] if argv is None else argv
    for i, arg in enumerate(argv):
        if arg == "--backend" and i + 1 < len(argv):
            os.environ["KERAS_BACKEND"] = argv[i + 1]
        elif arg.startswith("--backend="):
            os.environ["KERAS_BACKEND"] = arg.split("=", 1)[1]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return os.environ.get("KERAS_BACKEND", "tensorflow")


def machine_info():
    """Backend, versions and device (aae.runtime.runtime_info) plus the CPU and its cores."""
    from aae.runtime import cpu_model, runtime_info

    return {**runtime_info(), "cpu": cpu_model(), "cores": os.cpu_count()}


def gemm_gflops(m=128, k=784, n=512, distinct_right=False, seconds=2.0, repeats=3):
    """Best-of-`repeats` float32 matmul rate (GFLOP/s) of the Keras backend at (m x k) @ (k x n).

    50 products per compiled call (`tf.function`, `jax.jit`; PyTorch runs them eagerly, its
    per-op overhead is small next to a product), so Python overhead does not count. Distinct
    left operands (or right ones, `distinct_right`) keep any product from being folded away.
    """
    import keras

    inner, backend = 50, keras.backend.backend()
    rng = np.random.default_rng(0)
    left = rng.standard_normal((1 if distinct_right else inner, m, k)).astype("float32")
    right = rng.standard_normal((inner if distinct_right else 1, k, n)).astype("float32")
    pairs = [(i % len(left), i % len(right)) for i in range(inner)]
    if backend == "tensorflow":
        import tensorflow as tf

        a, b = tf.Variable(left), tf.Variable(right)  # variables: no constant folding

        @tf.function
        def run():
            acc = tf.zeros((m, n))
            for i, j in pairs:
                acc += tf.matmul(a[i], b[j])
            return acc
        args = ()
    elif backend == "jax":
        import jax

        @jax.jit
        def run(a, b):
            acc = jax.numpy.zeros((m, n))
            for i, j in pairs:
                acc += a[i] @ b[j]
            return acc
        args = (jax.numpy.asarray(left), jax.numpy.asarray(right))
    else:
        import torch

        a, b = torch.from_numpy(left), torch.from_numpy(right)

        def run():
            acc = torch.zeros((m, n))
            for i, j in pairs:
                acc += a[i] @ b[j]
            return acc
        args = ()
    keras.ops.convert_to_numpy(run(*args))  # trace and warm up
    best = 0.0
    for _ in range(repeats):
        calls, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / repeats:
            keras.ops.convert_to_numpy(run(*args))
            calls += 1
        best = max(best, 2.0 * m * k * n * inner * calls / (time.perf_counter() - t0) / 1e9)
    return best


def dense_train_flops(sizes, batch):
    """FLOPs of one training step of a dense stack with layer widths `sizes` (forward + backward).

    Forward 2*b*i*o per layer; backward 2*b*i*o for the weight gradient plus 2*b*i*o for the
    input gradient (not needed by the first layer).
    """
    flops = 0
    for layer, (i, o) in enumerate(zip(sizes[:-1], sizes[1:])):
        flops += 2 * batch * i * o * (2 if layer == 0 else 3)
    return flops


def update_json(path, backend, key, value):
    """Set `data[backend][key] = value` in the JSON file at `path` (created if missing), atomically."""
    path = Path(path)
    data = json.loads(path.read_text()) if path.exists() else {}
    data.setdefault(backend, {})[key] = value
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def dtype_policy(precision):
    """Build models under `aae.runtime.set_precision(precision)`, then restore float32: the policy
    is global, and must not leak into the other side of a comparison."""
    from aae.runtime import set_precision

    set_precision(precision)
    try:
        yield
    finally:
        set_precision("float32")


SCAN_LABELS = {"vae": "VAE 784-512-2, batch 128", "autoencoder": "autoencoder 784-32, batch 256",
               "adversarial_autoencoder": "adversarial autoencoder, 8-D, batch 128",
               "notebook06": "notebook 06's long-setting model (semi-supervised AAE), batch 100"}


def scan_table(scan, backend_name):
    """Rows for `benchmarks/scan_speed.py`'s results (benchmarks.json's `scanned_steps`): steps/s of
    Keras's own loop and of the scan at each unroll, and their ratios; [] without them."""
    if not scan:
        return []
    settings, models = scan["settings"], scan["models"]
    unrolls = [f"scan_unroll{u}" for u in settings["unrolls"]]
    rows = ["", f"{backend_name}: training steps scanned on the device (`aae.phases.ScannedSteps`) against "
                f"Keras's own loop, steps_per_execution = {settings['steps_per_execution']}, median of "
                f"{settings['repeats']} alternating rounds in one process (`benchmarks/scan_speed.py`, "
                f"{scan['machine']['device']}):", "",
            "| model | Keras's loop, steps/s | " + " | ".join(f"scan, unroll {u}" for u in settings["unrolls"])
            + " |", "|---|---:|" + "---:|" * len(unrolls)]
    for name, res in models.items():
        rate, ratio = res["steps_per_s"], res["ratio_scan_vs_keras_loop"]
        rows.append(f"| {SCAN_LABELS.get(name, name)} | {rate['keras_loop']:,.1f} | "
                    + " | ".join(f"{rate[v]:,.1f} ({ratio[v]:.2f}x)" for v in unrolls) + " |")
    return rows


def speed_table(data):
    """Markdown tables of a benchmarks.json dict ({backend: results}); missing parts skipped."""
    rows = ["| model | backend | ours | plain Keras reference, same backend | ratio "
            "| test loss, ours / reference | share of the GEMM rate, ours / reference |",
            "|---|---|---:|---:|---:|---|---|"]
    backends = [b for b in BACKEND_NAMES if b in data]
    for key, label, unit, fmt in (("vae", "VAE 784-512-2, batch 128 (nats)", "samples/s", ".2f"),
                                  ("autoencoder", "autoencoder 784-32, batch 256 (BCE per pixel)",
                                   "samples/s", ".4f")):
        for backend in backends:
            if key in data[backend]:
                d = data[backend][key]
                ours, ref = d["ours"], d["reference"]
                rows.append(f"| {label} | {BACKEND_NAMES[backend]} | {ours['samples_per_second']:,.0f} {unit} "
                            f"| {ref['samples_per_second']:,.0f} {unit} | {d['speedup']:.2f}x "
                            f"| {ours['test_loss_mean']:{fmt}} / {ref['test_loss_mean']:{fmt}} "
                            f"| {ours['fraction_of_gemm']:.0%} / {ref['fraction_of_gemm']:.0%} |")
    for backend in backends:
        if "adversarial_autoencoder" in data[backend]:
            d = data[backend]["adversarial_autoencoder"]
            rate, ours = d["updates_per_s"], d["reported_variant"]
            rows.append(f"| adversarial autoencoder, 8-D, batch 128 | {BACKEND_NAMES[backend]} "
                        f"| {rate[ours]:,.1f} updates/s | {rate['common']:,.1f} updates/s (predict + "
                        f"train_on_batch) | {d['ratio_compiled_vs_common']:.2f}x | same updates "
                        f"| {d['fraction_of_gemm']['compiled']:.0%} / {d['fraction_of_gemm']['common']:.0%} |")
    for backend in backends:
        # the reference row first, whatever order the file holds them in
        levers = dict(sorted(data[backend].get("vae_levers", {}).items(),
                             key=lambda kv: not kv[0].startswith("reference")))
        if levers:
            rows += ["", f"{BACKEND_NAMES[backend]}: each lever alone on the VAE (`--levers`: median of "
                         "the rounds, same process):", "",
                     "| VAE variant | samples/s | vs reference | test loss (nats) |", "|---|---:|---:|---:|"]
            rows += [f"| {k} | {v['samples_per_second']:,.0f} | {v['ratio_to_reference']:.2f}x "
                     f"| {v['test_loss_mean']:.2f} |" for k, v in levers.items()]
        ratios = data[backend].get("adversarial_autoencoder", {}).get("ratio_by_variant", {})
        if ratios:
            rows += ["", f"{BACKEND_NAMES[backend]}: adversarial autoencoder variants, updates/s relative "
                         "to the common pattern: "
                     + ", ".join(f"{k.replace('compiled_', '')} {v:.2f}x" for k, v in ratios.items())
                     + " (spe = steps_per_execution, xla = jit_compile, bf16 = mixed_bfloat16)."]
    for backend in backends:
        rows += scan_table(data[backend].get("scanned_steps"), BACKEND_NAMES[backend])
    machines = []
    for backend in backends:
        m = data[backend].get("machine") or data[backend].get("adversarial_autoencoder", {}).get("machine")
        if m:
            machines.append(f"{BACKEND_NAMES[backend]} {m['backend_version']} on {m['device']}")
    if machines:
        keras_versions = sorted({(data[b].get("machine") or {}).get("keras", "") for b in backends} - {""})
        rows += ["", "Measured by `benchmarks/training_speed.py` and `benchmarks/aae_speed.py` "
                     f"(`make benchmark`), Keras {', '.join(keras_versions)}: "
                     + "; ".join(machines) + "."]
    return "\n".join(rows) + "\n"


def update_readme_speed(json_path, readme=None):
    """Rewrite the generated speed block (docs/speed.md) from `json_path`."""
    from aae.runner.summary import update_readme_block

    return update_readme_block(speed_table(json.loads(Path(json_path).read_text())), readme, name="speed")


def main(argv=None):
    """`python benchmarks/common.py JSON --readme-block NAME`: print a benchmarks file's tables
    and write them into the <!-- NAME:start --> ... <!-- NAME:end --> block of the page that holds
    it (aae.runner.summary.BLOCKS: docs/speed.md, docs/gpu.md)."""
    import argparse

    from aae.runner.summary import block_page, update_readme_block

    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    parser.add_argument("json", type=Path, help="a benchmarks.json written by the benchmark scripts")
    parser.add_argument("--readme-block", metavar="NAME", help="README block to replace")
    args = parser.parse_args(argv)
    table = speed_table(json.loads(args.json.read_text()))
    print(table)
    if args.readme_block and not update_readme_block(table, name=args.readme_block):
        raise SystemExit(f"{block_page(args.readme_block)} has no <!-- {args.readme_block}:start/end --> block")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
