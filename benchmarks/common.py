"""Shared pieces of the benchmark scripts: machine description and the float32 GEMM rate."""
from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import numpy as np

from aae.files import atomic_path
from aae.reproduce import machine_info  # noqa: F401  (re-exported for the scripts)

ROOT = Path(__file__).resolve().parent.parent


def gemm_gflops(m=128, k=784, n=512, seconds=2.0, repeats=3):
    """Best-of-`repeats` float32 matmul rate (GFLOP/s) of TensorFlow at shape (m x k) @ (k x n).

    Matmuls run chained inside one tf.function so Python overhead does not count.
    """
    import tensorflow as tf

    inner = 50
    # distinct left operands, so graph optimisation cannot fold the repeated products into one
    a = tf.random.normal((inner, m, k))
    b = tf.random.normal((k, n))

    @tf.function
    def run():
        acc = tf.zeros((m, n))
        for i in range(inner):
            acc += tf.matmul(a[i], b)
        return acc

    run().numpy()  # trace and warm up
    best = 0.0
    for _ in range(repeats):
        calls, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / repeats:
            run().numpy()
            calls += 1
        rate = 2.0 * m * k * n * inner * calls / (time.perf_counter() - t0) / 1e9
        best = max(best, rate)
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


def update_json(path, key, value):
    """Merge `{key: value}` into the JSON file at `path` (created if missing), atomically."""
    path = Path(path)
    data = json.loads(path.read_text()) if path.exists() else {}
    data[key] = value
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def dtype_policy(precision):
    """Build models under `aae.models.set_precision(precision)`, then restore float32: the policy
    is global, and must not leak into the other side of a comparison."""
    from aae.models import set_precision

    set_precision(precision)
    try:
        yield
    finally:
        set_precision("float32")


def speed_table(data):
    """Markdown table of the headline speed figures in a benchmarks.json dict (missing parts skipped)."""
    rows = ["| model | ours | plain Keras reference | ratio | test loss, ours / reference "
            "| share of the GEMM rate, ours / reference |", "|---|---:|---:|---:|---|---|"]
    for key, label, unit, fmt in (("vae", "VAE 784-512-2, batch 128 (nats)", "samples/s", ".2f"),
                                  ("autoencoder", "autoencoder 784-32, batch 256 (BCE per pixel)",
                                   "samples/s", ".4f")):
        if key in data:
            d, ours, ref = data[key], data[key]["ours"], data[key]["reference"]
            rows.append(f"| {label} | {ours['samples_per_second']:,.0f} {unit} "
                        f"| {ref['samples_per_second']:,.0f} {unit} | {d['speedup']:.2f}x "
                        f"| {ours['test_loss_mean']:{fmt}} / {ref['test_loss_mean']:{fmt}} "
                        f"| {ours['fraction_of_gemm']:.0%} / {ref['fraction_of_gemm']:.0%} |")
    if "adversarial_autoencoder" in data:
        d = data["adversarial_autoencoder"]
        rate, ours = d["updates_per_s"], d.get("reported_variant", d["best_compiled_variant"])
        rows.append(f"| adversarial autoencoder, 8-D, batch 128 | {rate[ours]:,.1f} "
                    f"updates/s | {rate['common']:,.1f} updates/s (predict + train_on_batch) "
                    f"| {d['ratio_compiled_vs_common']:.2f}x | same updates "
                    f"| {d['fraction_of_gemm']['compiled']:.0%} / {d['fraction_of_gemm']['common']:.0%} |")
    reference_first = sorted(data.get("vae_levers", {}).items(), key=lambda kv: not kv[0].startswith("reference"))
    levers = {k: v for k, v in reference_first if "ratio_to_reference" in v}
    if levers:
        rows += ["", "Each lever alone on the VAE (`--levers`: median of the rounds, same process):", "",
                 "| VAE variant | samples/s | vs reference | test loss (nats) |", "|---|---:|---:|---:|"]
        rows += [f"| {k} | {v['samples_per_second']:,.0f} | {v['ratio_to_reference']:.2f}x "
                 f"| {v['test_loss_mean']:.2f} |" for k, v in levers.items()]
    if "adversarial_autoencoder" in data:
        ratios = data["adversarial_autoencoder"].get("ratio_by_variant", {})
        if ratios:
            rows += ["", "Adversarial autoencoder variants, updates/s relative to the common pattern: "
                     + ", ".join(f"{k.replace('compiled_', '')} {v:.2f}x" for k, v in ratios.items())
                     + " (spe = steps_per_execution, xla = jit_compile, bf16 = mixed_bfloat16)."]
    machine = data.get("machine") or data.get("adversarial_autoencoder", {}).get("machine")
    if machine:
        rows += ["", f"Measured by `make benchmark` on {machine['cpu']} ({machine['cores']} cores), "
                     f"TensorFlow {machine['tensorflow']}, Keras {machine['keras']}."]
    return "\n".join(rows) + "\n"


def update_readme_speed(json_path, readme=ROOT / "README.md"):
    """Rewrite the README's generated speed block from `json_path`."""
    from aae.reproduce import update_readme_block

    return update_readme_block(speed_table(json.loads(Path(json_path).read_text())), readme, name="speed")
