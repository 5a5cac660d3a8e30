"""Shared pieces of the benchmark scripts: machine description and the float32 GEMM rate."""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def machine_info():
    """CPU model, core count and library versions, for the benchmark report."""
    import keras
    import tensorflow as tf

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "tensorflow": tf.__version__, "keras": keras.__version__}


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
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
