"""The loader against the real file and against files this test writes and corrupts."""
import hashlib
import os

import numpy as np
import pytest

from aae import data
from aae.data import MnistError, MnistNotFoundError, find_mnist, load_mnist, train_label_counts


@pytest.fixture(scope="module")
def real(mnist_dir):
    return load_mnist(mnist_dir / "mnist.npz")


@pytest.fixture(scope="module")
def raw(mnist_dir):
    with np.load(mnist_dir / "mnist.npz", allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def test_shapes_dtypes_range(real):
    (x_train, y_train), (x_test, y_test) = real
    assert x_train.shape == (60000, 784) and x_test.shape == (10000, 784)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    assert abs(x_train.mean() - 0.1307) < 5e-4 and abs(x_train.std() - 0.3081) < 5e-4
    assert list(y_train[:10]) == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert list(y_test[:10]) == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


def test_image_shape(mnist_dir):
    (x_train, _), (x_test, _) = load_mnist(mnist_dir, flatten=False)
    assert x_train.shape == (60000, 28, 28, 1) and x_test.shape == (10000, 28, 28, 1)


def test_label_counts(real):
    (_, y_train), _ = real
    assert train_label_counts(y_train) == {0: 5923, 1: 6742, 2: 5958, 3: 6131, 4: 5842,
                                           5: 5421, 6: 5918, 7: 6265, 8: 5851, 9: 5949}


def test_search_order(tmp_path, monkeypatch, mnist_dir):
    monkeypatch.setenv("AAE_DATA_DIR", str(mnist_dir))
    monkeypatch.setattr(data, "PROJECT_ROOT", tmp_path / "project")
    assert find_mnist() == mnist_dir / "mnist.npz"
    # the explicit argument wins over the environment
    other = tmp_path / "mine.npz"
    other.write_bytes(b"x")
    assert find_mnist(other) == other


def test_not_found_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("AAE_DATA_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setattr(data, "PROJECT_ROOT", tmp_path / "project")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(data, "KERAS_URL", "http://127.0.0.1:9/mnist.npz")  # refused at once
    with pytest.raises(MnistNotFoundError) as err:
        load_mnist()
    msg = str(err.value)
    assert str(tmp_path / "nowhere" / "mnist.npz") in msg
    assert str(tmp_path / "project" / "data" / "mnist.npz") in msg
    assert ".keras/datasets/mnist.npz" in msg
    assert "AAE_DATA_DIR" in msg and "Download" in msg


def test_missing_explicit_path(tmp_path):
    with pytest.raises(MnistNotFoundError, match="No MNIST file at .*missing.npz"):
        load_mnist(tmp_path / "missing.npz")


def _write(path, arrays, **kw):
    np.savez(path, **arrays, **kw)
    return path


def _check_untouched(path, before):
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before, "loader modified user file"


def test_truncated_file(tmp_path, mnist_dir):
    bad = tmp_path / "mnist.npz"
    bad.write_bytes((mnist_dir / "mnist.npz").read_bytes()[:100_000])
    before = hashlib.sha256(bad.read_bytes()).hexdigest()
    with pytest.raises(MnistError, match="not a valid .npz .*truncated.*AAE_DATA_DIR"):
        load_mnist(bad)
    _check_untouched(bad, before)


def test_not_a_zip(tmp_path):
    bad = tmp_path / "mnist.npz"
    bad.write_text("<html>proxy error</html>")
    with pytest.raises(MnistError, match="not a valid .npz"):
        load_mnist(bad)


def test_pickled_objects_refused(tmp_path, raw):
    arrays = dict(raw, y_train=np.array([{"evil": 1}] * 60000, dtype=object))
    bad = _write(tmp_path / "mnist.npz", arrays)
    with pytest.raises(MnistError, match="pickled Python objects; refusing"):
        load_mnist(bad)
    assert bad.exists()


def test_wrong_shape(tmp_path, raw):
    bad = _write(tmp_path / "mnist.npz", dict(raw, x_test=raw["x_test"][:5000]))
    with pytest.raises(MnistError, match=r"x_test has shape \(5000, 28, 28\).*expected \(10000, 28, 28\)"):
        load_mnist(bad)


def test_wrong_dtype(tmp_path, raw):
    bad = _write(tmp_path / "mnist.npz", dict(raw, x_train=raw["x_train"].astype(np.float32)))
    with pytest.raises(MnistError, match="dtype float32, expected .* uint8"):
        load_mnist(bad)


def test_label_out_of_range(tmp_path, raw):
    y = raw["y_test"].copy()
    y[0] = 11
    bad = _write(tmp_path / "mnist.npz", dict(raw, y_test=y))
    with pytest.raises(MnistError, match="labels in y_test must lie in 0..9, found 11"):
        load_mnist(bad)


def test_checksum(tmp_path, raw):
    x = raw["x_train"].copy()
    x[123, 4, 5] ^= 1  # one flipped bit
    bad = _write(tmp_path / "mnist.npz", dict(raw, x_train=x))
    with pytest.raises(MnistError, match="x_train fails its SHA-256 check"):
        load_mnist(bad)


def test_missing_array(tmp_path, raw):
    arrays = {k: v for k, v in raw.items() if k != "y_test"}
    bad = _write(tmp_path / "mnist.npz", arrays)
    with pytest.raises(MnistError, match=r"lacks the arrays \['y_test'\]"):
        load_mnist(bad)


def test_subsets(mnist_dir):
    (x, y), (xt, yt) = load_mnist(mnist_dir, train_size=100, test_size=10)
    assert x.shape == (100, 784) and y.shape == (100,) and xt.shape == (10, 784)
    with pytest.raises(ValueError, match="train_size must be a positive integer or None"):
        load_mnist(mnist_dir, train_size=0)
