"""Where the numbers come from: the Keras backend, its version, the device, and the precision.

The only module that asks a backend library directly, and only for what Keras does not say:
the backend's version and the accelerator's name. Everything is imported lazily, so this works
with whichever one backend is installed.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import platform
import time
from pathlib import Path

import keras

from .params import BACKENDS, PRECISIONS

__all__ = ["BACKENDS", "PRECISIONS", "backend", "accelerator", "cpu_model", "cpu_has_bf16",
           "runtime_info", "set_precision", "compile_options", "ProgressBar", "EpochLog"]


def backend():
    """The Keras backend in use: "tensorflow", "jax" or "torch"."""
    return keras.backend.backend()


def _devices(kind):
    """Keras's names of the devices of `kind` ("gpu", "cpu") the backend sees."""
    if backend() == "torch":  # Keras has no device listing for PyTorch (3.15): ask torch
        import torch

        if kind == "gpu":
            return [f"gpu:{i}" for i in range(torch.cuda.device_count())]
        return ["cpu:0"] if kind == "cpu" else []
    return [d for d in keras.distribution.list_devices() if d.split(":")[0].lower() == kind]


def accelerator():
    """Name of the first GPU Keras trains on (e.g. "NVIDIA H200"), or None on a CPU-only run."""
    if not _devices("gpu"):
        return None
    name = backend()
    with contextlib.suppress(Exception):  # the name is a label: never fail a run over it
        if name == "jax":
            import jax
            return jax.devices("gpu")[0].device_kind
        if name == "torch":
            import torch
            return torch.cuda.get_device_name(0)
        if name == "tensorflow":
            import tensorflow as tf
            gpu = tf.config.list_physical_devices("GPU")[0]
            return tf.config.experimental.get_device_details(gpu).get("device_name", "GPU")
    return "GPU"


def cpu_model():
    """The CPU's model name from /proc/cpuinfo (else platform.processor())."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def cpu_has_bf16():
    """True if the CPU does bfloat16 dot products natively (AVX512-BF16 or AMX)."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def _version(module):
    with contextlib.suppress(Exception):
        return importlib.import_module(module).__version__
    return "unknown"


def runtime_info():
    """Backend, versions and device of this process: recorded beside every measured number."""
    gpu = accelerator()
    return {"backend": backend(), "backend_version": _version(backend()),
            "keras": keras.__version__, "python": platform.python_version(),
            "device": gpu or f"{cpu_model()} ({os.cpu_count()} cores)",
            "accelerator": gpu is not None}


def set_precision(precision="auto"):
    """Set Keras's global dtype policy before building models; returns the policy's name.

    "auto" picks "mixed_bfloat16" (bfloat16 arithmetic, float32 weights and outputs) only where
    it was measured faster at the same test loss (`make benchmark`, README speed tables):
    TensorFlow or PyTorch on a CPU-only machine whose CPU has native bfloat16. JAX on the same
    CPU ran slower in bfloat16, and on the GPU it was no clearer a gain than the run-to-run
    spread, so "float32" everywhere else.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        bf16_faster = backend() in ("tensorflow", "torch") and cpu_has_bf16() and not _devices("gpu")
        precision = "mixed_bfloat16" if bf16_faster else "float32"
    keras.mixed_precision.set_global_policy(precision)
    return precision


def compile_options(steps_per_execution=1, jit_compile="auto"):
    """`model.compile` arguments this backend can use, from the notebooks' settings.

    PyTorch runs one step per call (Keras refuses steps_per_execution > 1 there), and its
    jit_compile=True means torch.compile, which took longer to compile these small models than
    to train them, so both are turned off there. TensorFlow and JAX get the values as given.
    """
    if backend() == "torch":
        return {"steps_per_execution": 1, "jit_compile": False}
    return {"steps_per_execution": steps_per_execution, "jit_compile": jit_compile}


class ProgressBar(keras.callbacks.ProgbarLogger):
    """Keras's progress bar with the right step count when a compiled call runs several steps.

    With steps_per_execution > 1 Keras reports each call's last step, counted as if the call had
    been full, so an epoch's last call reports past the end ("480/469" for 469 batches in calls of
    32). This caps the count at the epoch's steps; the bar is otherwise Keras's own. Pass it to
    `fit(..., callbacks=[ProgressBar()])`: Keras then uses it instead of its default bar.
    """

    def _capped(self, batch):
        return batch if self.target is None else min(batch, self.target - 1)

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(self._capped(batch), logs)

    def on_test_batch_end(self, batch, logs=None):
        super().on_test_batch_end(self._capped(batch), logs)

    def on_predict_batch_end(self, batch, logs=None):
        super().on_predict_batch_end(self._capped(batch), logs)


class EpochLog(keras.callbacks.Callback):
    """One line per epoch: its number, seconds and the logged losses (`fit(..., verbose=0,
    callbacks=[EpochLog()])`), so a stored notebook holds a short, readable training log.

    `every` prints only every n-th epoch (and the last); `prefix` starts each line (a model's
    name, when a cell trains several).
    """

    def __init__(self, every=1, prefix="", digits=4):
        super().__init__()
        self.every, self.prefix, self.digits = every, prefix, digits

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        epochs = self.params.get("epochs") if self.params else None
        if (epoch + 1) % self.every and epoch + 1 != epochs:
            return
        values = " - ".join(f"{k}: {float(v):.{self.digits}g}" for k, v in (logs or {}).items())
        head = f"{self.prefix}epoch {epoch + 1}" + (f"/{epochs}" if epochs else "")
        print(f"{head} - {time.perf_counter() - self._start:.1f}s - {values}", flush=True)
