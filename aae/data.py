"""MNIST and Fashion-MNIST loading with integrity checks.

Used by every notebook. `load_dataset(name)` finds the data, checks every array (shape, dtype,
label range, SHA-256) and returns float32 pixels in [0, 1] with integer labels; `load_mnist()`
is `load_dataset("mnist")`.

Where each data set is looked for, in order (the first place holding it wins):

* MNIST, one file `mnist.npz` (the Keras layout): the `path` argument (the file, or a folder
  holding it), `$AAE_DATA_DIR/mnist.npz`, `data/mnist.npz` at the project root, the Keras
  cache `~/.keras/datasets/mnist.npz`, then a download with `keras.utils.get_file`.
* Fashion-MNIST, the four idx files `{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz` as
  published: the `path` argument (a folder holding the four files, or a Keras-layout `.npz`),
  `$AAE_DATA_DIR/fashion-mnist/` or else `$AAE_DATA_DIR` itself, `data/fashion-mnist/` at the
  project root, the Debian package `dataset-fashion-mnist` (`/usr/share/datasets/fashion-mnist/`),
  the Keras cache `~/.keras/datasets/fashion-mnist/`, then a download from the Keras URLs into
  that cache. A folder counts only if it holds all four files.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import zlib
import zipfile
from pathlib import Path

import numpy as np

from .paths import DATA

__all__ = ["load_dataset", "load_mnist", "find_mnist", "find_fashion_mnist", "class_names",
           "train_label_counts", "read_idx", "DATASETS", "DatasetError", "DatasetNotFoundError",
           "MnistError", "MnistNotFoundError", "EXPECTED", "FASHION_EXPECTED"]

# The data sets `load_dataset` knows, by the name it takes.
DATASETS = ("mnist", "fashion_mnist")

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


class DatasetError(ValueError):
    """The data file exists but is not what it should be."""


class DatasetNotFoundError(FileNotFoundError):
    """No data file anywhere, and downloading failed."""


# The names the MNIST-only loader raised before Fashion-MNIST came; the same classes.
MnistError = DatasetError
MnistNotFoundError = DatasetNotFoundError


def _candidates(path=None):
    """Places to look for mnist.npz, in order, with a label for error messages."""
    if path is not None:
        p = Path(path).expanduser()
        yield "path argument", (p / "mnist.npz" if p.is_dir() else p)
        return
    env = os.environ.get("AAE_DATA_DIR")
    if env:
        yield "$AAE_DATA_DIR", Path(env).expanduser() / "mnist.npz"
    yield "project data/", DATA / "mnist.npz"
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


def _check_arrays(arrays, expected, source, hint, what="MNIST"):
    """Raise DatasetError unless every array has its expected shape, dtype, label range and digest."""
    for name, (shape, dtype, digest) in expected.items():
        a = arrays[name]
        if a.shape != shape or a.dtype != dtype:
            raise DatasetError(f"{source}: array {name} has shape {a.shape} and dtype {a.dtype}, "
                               f"expected {shape} and {np.dtype(dtype)}. {hint}")
        if name.startswith("y") and a.max() > 9:
            raise DatasetError(f"{source}: labels in {name} must lie in 0..9, found {a.max()}. "
                               f"{hint}")
        if _sha256(a) != digest:
            raise DatasetError(f"{source}: array {name} fails its SHA-256 check (the data differs "
                               f"from canonical {what}). {hint}")
    return arrays


def _read_npz(file: Path, expected=None, hint=FIX_HINT, what="MNIST") -> dict[str, np.ndarray]:
    """Read the four arrays with allow_pickle=False and verify them against `expected` (MNIST's
    EXPECTED by default)."""
    expected = EXPECTED if expected is None else expected
    if not zipfile.is_zipfile(file):
        raise DatasetError(f"{file} is not a valid .npz (zip) file: it may be truncated or "
                           f"not an npz at all. {hint}")
    try:
        with np.load(file, allow_pickle=False) as npz:
            missing = sorted(set(expected) - set(npz.files))
            if missing:
                raise DatasetError(f"{file} lacks the arrays {missing} (it holds "
                                   f"{sorted(npz.files)}). {hint}")
            arrays = {name: npz[name] for name in expected}
    except DatasetError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise DatasetError(f"{file} holds pickled Python objects; refusing to load them, "
                               f"since unpickling can run arbitrary code. {hint}") from exc
        raise DatasetError(f"{file} could not be read as npz ({exc}). {hint}") from exc
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"{file} is damaged ({type(exc).__name__}: {exc}); it may be "
                           f"truncated. {hint}") from exc
    return _check_arrays(arrays, expected, file, hint, what)


# --- Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): the four idx files as published ---------------

FASHION_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
FASHION_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")  # apt install dataset-fashion-mnist
FASHION_SUBDIR = "fashion-mnist"  # under $AAE_DATA_DIR, data/ and ~/.keras/datasets
# Array name -> idx file name.
FASHION_FILES = {"x_train": "train-images-idx3-ubyte.gz", "y_train": "train-labels-idx1-ubyte.gz",
                 "x_test": "t10k-images-idx3-ubyte.gz", "y_test": "t10k-labels-idx1-ubyte.gz"}
# Shape, dtype and SHA-256 of `np.ascontiguousarray(a).tobytes()` for each array, computed from
# the Debian package's files (the same data as the Keras and Zalando downloads).
FASHION_EXPECTED = {
    "x_train": ((60000, 28, 28), np.uint8,
                "2e487a6c89124f78f2d7521542223cafe96f7123c3ca13d447772ac6ecbb3012"),
    "y_train": ((60000,), np.uint8,
                "657fbd221bfc9f4198cc14b5619cc33ec57c58dd0e47af4d99d6650759e869a7"),
    "x_test": ((10000, 28, 28), np.uint8,
               "c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a"),
    "y_test": ((10000,), np.uint8,
               "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9"),
}
FASHION_FIX_HINT = ("Point AAE_DATA_DIR at a folder holding a good copy of the four Fashion-MNIST "
                    "files (" + ", ".join(FASHION_FILES.values()) + "), directly or in a "
                    "fashion-mnist/ subfolder, install the Debian package dataset-fashion-mnist, "
                    "or pass path= to load_dataset().")
CLASS_NAMES = {
    "mnist": [str(d) for d in range(10)],
    "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                      "Sneaker", "Bag", "Ankle boot"],
}
# idx type codes (third magic byte) -> NumPy dtype; big-endian as the format specifies.
_IDX_TYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(file, hint="") -> np.ndarray:
    """Read one idx file (gzip-compressed if its name ends in .gz) into an array.

    The header is parsed, not assumed: two zero bytes, a type code, the number of dimensions,
    then one big-endian uint32 per dimension. A bad magic number or a payload whose size does not
    match the dimensions raises DatasetError saying so.
    """
    file = Path(file)
    try:
        if file.name.endswith(".gz"):
            with gzip.open(file, "rb") as f:
                raw = f.read()
        else:
            raw = file.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DatasetError(f"{file} is damaged ({type(exc).__name__}: {exc}); it may be truncated "
                           f"or not a gzip file. {hint}".rstrip()) from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES or raw[3] < 1:
        raise DatasetError(f"{file} is not an idx file: bad magic number {raw[:4].hex() or '(empty)'} "
                           f"(expected 0000 then a type code and a dimension count, e.g. 00000803 "
                           f"for uint8 images). {hint}".rstrip())
    dtype, ndim = _IDX_TYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{file}: idx header announces {ndim} dimensions but the file ends after "
                           f"{len(raw)} bytes. {hint}".rstrip())
    dims = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    size = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != size:
        raise DatasetError(f"{file}: idx header announces shape {dims} ({size} bytes of data) but "
                           f"the file holds {len(raw) - header} bytes after the header; it may be "
                           f"truncated or padded. {hint}".rstrip())
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def _has_fashion(folder: Path) -> bool:
    return all((folder / f).is_file() for f in FASHION_FILES.values())


def _fashion_candidates():
    """Folders to look in for the four files, in order, with a label for error messages."""
    env = os.environ.get("AAE_DATA_DIR")
    if env:
        yield "$AAE_DATA_DIR/fashion-mnist", Path(env).expanduser() / FASHION_SUBDIR
        yield "$AAE_DATA_DIR", Path(env).expanduser()
    yield "project data/", DATA / FASHION_SUBDIR
    yield "Debian package dataset-fashion-mnist", FASHION_DEBIAN_DIR
    yield "Keras cache", Path.home() / ".keras" / "datasets" / FASHION_SUBDIR


def find_fashion_mnist(path=None, download=True) -> Path:
    """Return the folder holding the four Fashion-MNIST idx files (or the `.npz` given as path).

    Order: explicit path, $AAE_DATA_DIR/fashion-mnist, $AAE_DATA_DIR, data/fashion-mnist, the
    Debian package folder, the Keras cache, then a download into the Keras cache.
    """
    if path is not None:
        p = Path(path).expanduser()
        if p.is_file() or (p.is_dir() and _has_fashion(p)):
            return p
        what = ("a folder without all four files " + ", ".join(FASHION_FILES.values())
                if p.is_dir() else "no such file or folder")
        raise DatasetNotFoundError(f"No Fashion-MNIST at {p} ({what}). Check the path, or leave "
                                   "path=None to search the usual places.")
    looked = []
    for label, folder in _fashion_candidates():
        if _has_fashion(folder):
            return folder
        looked.append(f"{label}: {folder}")
    if not os.environ.get("AAE_DATA_DIR"):
        looked.insert(0, "$AAE_DATA_DIR: not set")
    if download:
        try:
            import keras
            for fname in FASHION_FILES.values():
                got = keras.utils.get_file(fname, FASHION_URL + fname,
                                           cache_subdir=os.path.join("datasets", FASHION_SUBDIR))
            return Path(got).parent
        except Exception as exc:  # no network, proxy errors
            reason = f"Download from {FASHION_URL} failed ({type(exc).__name__}: {exc})."
    else:
        reason = "Downloading was disabled."
    raise DatasetNotFoundError(
        "Fashion-MNIST (" + ", ".join(FASHION_FILES.values()) + ") not found. Looked in:\n  "
        + "\n  ".join(looked) + f"\n{reason}\nFix: set AAE_DATA_DIR to a folder holding the four "
        "files (directly or in a fashion-mnist/ subfolder), or install the Debian package "
        "(apt-get install dataset-fashion-mnist).")


def _read_fashion(found: Path) -> dict[str, np.ndarray]:
    if found.is_file():
        return _read_npz(found, FASHION_EXPECTED, FASHION_FIX_HINT, "Fashion-MNIST")
    arrays = {name: read_idx(found / fname, FASHION_FIX_HINT) for name, fname in FASHION_FILES.items()}
    return _check_arrays(arrays, FASHION_EXPECTED, found, FASHION_FIX_HINT, "Fashion-MNIST")


def _check_name(name):
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(map(repr, DATASETS))}.")
    return name


def class_names(name="mnist") -> list[str]:
    """The 10 class names of a data set, by label: "0".."9" for MNIST, the garment names for
    Fashion-MNIST ("T-shirt/top", "Trouser", ...)."""
    return list(CLASS_NAMES[_check_name(name)])


def load_dataset(name="mnist", path=None, flatten=True, download=True, train_size=None,
                 test_size=None):
    """Return ``(x_train, y_train), (x_test, y_test)`` of data set `name` (one of DATASETS).

    x: float32 in [0, 1], shape (n, 784) if `flatten` else (n, 28, 28, 1); y: int64 in 0..9.
    `train_size` / `test_size` keep only the first n images (quick runs); None keeps all.
    Where the files are looked for: see this module's docstring.
    """
    _check_name(name)
    for key, size in (("train", train_size), ("test", test_size)):  # before any reading
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise ValueError(f"{key}_size must be a positive integer or None (all images), "
                             f"got {size!r}")
    if name == "mnist":
        arrays = _read_npz(find_mnist(path, download=download))
    else:
        arrays = _read_fashion(find_fashion_mnist(path, download=download))
    for key, size in (("train", train_size), ("test", test_size)):
        if size is not None:
            arrays[f"x_{key}"], arrays[f"y_{key}"] = arrays[f"x_{key}"][:size], arrays[f"y_{key}"][:size]
    shape = (-1, 784) if flatten else (-1, 28, 28, 1)
    xs = [(arrays[k].reshape(shape) / np.float32(255)).astype(np.float32) for k in ("x_train", "x_test")]
    ys = [arrays[k].astype(np.int64) for k in ("y_train", "y_test")]
    return (xs[0], ys[0]), (xs[1], ys[1])


def load_mnist(path=None, flatten=True, download=True, train_size=None, test_size=None):
    """Return MNIST as ``(x_train, y_train), (x_test, y_test)``: `load_dataset("mnist", ...)`.

    x: float32 in [0, 1], shape (n, 784) if `flatten` else (n, 28, 28, 1); y: int64 in 0..9.
    `train_size` / `test_size` keep only the first n images (quick runs); None keeps all.
    """
    return load_dataset("mnist", path, flatten=flatten, download=download,
                        train_size=train_size, test_size=test_size)


def train_label_counts(y_train=None, dataset="mnist") -> dict[int, int]:
    """How many training images each class has, ``{0: 5923, 1: 6742, ...}`` for MNIST.

    Counts `y_train` (labels of either data set); without it, loads `dataset`'s training labels.
    """
    if y_train is None:
        (_, y_train), _ = load_dataset(dataset)
    counts = np.bincount(np.asarray(y_train), minlength=10)
    return {label: int(n) for label, n in enumerate(counts)}
