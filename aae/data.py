"""MNIST loading with integrity checks.

Used by every notebook. `load_mnist()` finds `mnist.npz` (the Keras layout), checks it
and returns float32 pixels in [0, 1] with integer labels.
"""
from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["load_mnist", "find_mnist", "train_label_counts", "MnistError",
           "MnistNotFoundError", "EXPECTED"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
KERAS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
KERAS_FILE_HASH = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"

# Shape, dtype and SHA-256 of `np.ascontiguousarray(a).tobytes()` for each array.
EXPECTED = {
    "x_train": ((60000, 28, 28), np.uint8,
                "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757"),
    "y_train": ((60000,), np.uint8,
                "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13"),
    "x_test": ((10000, 28, 28), np.uint8,
               "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161"),
    "y_test": ((10000,), np.uint8,
               "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5"),
}

FIX_HINT = ("Point AAE_DATA_DIR at a folder holding a good copy of mnist.npz "
            "(the Keras layout), or pass path= to load_mnist().")


class MnistError(ValueError):
    """The MNIST file exists but is not what it should be."""


class MnistNotFoundError(FileNotFoundError):
    """No MNIST file anywhere, and downloading failed."""


def _candidates(path=None):
    """Places to look for mnist.npz, in order, with a label for error messages."""
    if path is not None:
        p = Path(path).expanduser()
        yield "path argument", (p / "mnist.npz" if p.is_dir() else p)
        return
    env = os.environ.get("AAE_DATA_DIR")
    if env:
        yield "$AAE_DATA_DIR", Path(env).expanduser() / "mnist.npz"
    yield "project data/", PROJECT_ROOT / "data" / "mnist.npz"
    yield "Keras cache", Path.home() / ".keras" / "datasets" / "mnist.npz"


def find_mnist(path=None, download=True) -> Path:
    """Return the path of mnist.npz: explicit path, $AAE_DATA_DIR, data/, Keras cache, download."""
    looked = []
    for label, candidate in _candidates(path):
        if candidate.is_file():
            return candidate
        looked.append(f"{label}: {candidate}")
    if path is not None:
        raise MnistNotFoundError(f"No MNIST file at {looked[0].split(': ', 1)[1]}. "
                                 "Check the path, or leave path=None to search the usual places.")
    if not os.environ.get("AAE_DATA_DIR"):
        looked.insert(0, "$AAE_DATA_DIR: not set")
    if download:
        try:
            import keras
            return Path(keras.utils.get_file("mnist.npz", KERAS_URL, file_hash=KERAS_FILE_HASH))
        except Exception as exc:  # no network, proxy errors, hash mismatch
            reason = f"Download from {KERAS_URL} failed ({type(exc).__name__}: {exc})."
    else:
        reason = "Downloading was disabled."
    raise MnistNotFoundError(
        "MNIST (mnist.npz) not found. Looked in:\n  " + "\n  ".join(looked)
        + f"\n{reason}\nFix: set AAE_DATA_DIR to the folder holding mnist.npz "
        "(e.g. export AAE_DATA_DIR=../shared/data), or put it in data/ at the project root.")


def _sha256(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def _read_npz(file: Path) -> dict[str, np.ndarray]:
    """Read the four arrays with allow_pickle=False and verify them against EXPECTED."""
    if not zipfile.is_zipfile(file):
        raise MnistError(f"{file} is not a valid .npz (zip) file: it may be truncated or "
                         f"not an npz at all. {FIX_HINT}")
    try:
        with np.load(file, allow_pickle=False) as npz:
            missing = sorted(set(EXPECTED) - set(npz.files))
            if missing:
                raise MnistError(f"{file} lacks the arrays {missing} (it holds {sorted(npz.files)}). "
                                 f"{FIX_HINT}")
            arrays = {name: npz[name] for name in EXPECTED}
    except MnistError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise MnistError(f"{file} holds pickled Python objects; refusing to load them, "
                             f"since unpickling can run arbitrary code. {FIX_HINT}") from exc
        raise MnistError(f"{file} could not be read as npz ({exc}). {FIX_HINT}") from exc
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise MnistError(f"{file} is damaged ({type(exc).__name__}: {exc}); it may be "
                         f"truncated. {FIX_HINT}") from exc
    for name, (shape, dtype, digest) in EXPECTED.items():
        a = arrays[name]
        if a.shape != shape or a.dtype != dtype:
            raise MnistError(f"{file}: array {name} has shape {a.shape} and dtype {a.dtype}, "
                             f"expected {shape} and {np.dtype(dtype)}. {FIX_HINT}")
        if name.startswith("y") and a.max() > 9:
            raise MnistError(f"{file}: labels in {name} must lie in 0..9, found {a.max()}. "
                             f"{FIX_HINT}")
        if _sha256(a) != digest:
            raise MnistError(f"{file}: array {name} fails its SHA-256 check (the data differs "
                             f"from canonical MNIST). {FIX_HINT}")
    return arrays


def load_mnist(path=None, flatten=True, download=True, train_size=None, test_size=None):
    """Return ``(x_train, y_train), (x_test, y_test)``.

    x: float32 in [0, 1], shape (n, 784) if `flatten` else (n, 28, 28, 1); y: int64 in 0..9.
    `train_size` / `test_size` keep only the first n images (quick runs); None keeps all.
    """
    arrays = _read_npz(find_mnist(path, download=download))
    for key, size in (("train", train_size), ("test", test_size)):
        if size is not None:
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise ValueError(f"{key}_size must be a positive integer or None (all images), "
                                 f"got {size!r}")
            arrays[f"x_{key}"], arrays[f"y_{key}"] = arrays[f"x_{key}"][:size], arrays[f"y_{key}"][:size]
    shape = (-1, 784) if flatten else (-1, 28, 28, 1)
    xs = [(arrays[k].reshape(shape) / np.float32(255)).astype(np.float32) for k in ("x_train", "x_test")]
    ys = [arrays[k].astype(np.int64) for k in ("y_train", "y_test")]
    return (xs[0], ys[0]), (xs[1], ys[1])


def train_label_counts(y_train=None) -> dict[int, int]:
    """How many training images each digit has, ``{0: 5923, 1: 6742, ...}``."""
    if y_train is None:
        (_, y_train), _ = load_mnist()
    counts = np.bincount(np.asarray(y_train), minlength=10)
    return {digit: int(n) for digit, n in enumerate(counts)}
