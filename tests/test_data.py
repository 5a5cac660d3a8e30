"""The loader against the real file and against files this test writes and corrupts."""
import hashlib

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
    monkeypatch.setattr(data, "DATA", tmp_path / "project" / "data")
    assert find_mnist() == mnist_dir / "mnist.npz"
    # the explicit argument wins over the environment
    other = tmp_path / "mine.npz"
    other.write_bytes(b"x")
    assert find_mnist(other) == other


def test_not_found_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("AAE_DATA_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setattr(data, "DATA", tmp_path / "project" / "data")
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


# --- Fashion-MNIST and load_dataset -----------------------------------------------------------

import gzip  # noqa: E402

from aae.data import (DATASETS, FASHION_FILES, DatasetError, DatasetNotFoundError,  # noqa: E402
                      class_names, find_fashion_mnist, load_dataset, read_idx)

DEBIAN = data.FASHION_DEBIAN_DIR


@pytest.fixture(scope="module")
def fashion_dir():
    if not all((DEBIAN / f).is_file() for f in FASHION_FILES.values()):
        pytest.fail(f"Fashion-MNIST not found in {DEBIAN}: apt-get install dataset-fashion-mnist")
    return DEBIAN


@pytest.fixture(scope="module")
def fashion(fashion_dir):
    return load_dataset("fashion_mnist", fashion_dir)


def test_fashion_real_files(fashion):
    (x_train, y_train), (x_test, y_test) = fashion
    assert x_train.shape == (60000, 784) and x_test.shape == (10000, 784)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    assert abs(x_train.mean() - 0.2860) < 5e-4  # the published mean pixel
    assert list(y_train[:10]) == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert list(y_test[:10]) == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    assert train_label_counts(y_train) == {c: 6000 for c in range(10)}
    assert np.bincount(y_test).tolist() == [1000] * 10


def test_fashion_images_and_subsets(fashion_dir):
    (x, y), (xt, yt) = load_dataset("fashion_mnist", fashion_dir, flatten=False, train_size=50, test_size=7)
    assert x.shape == (50, 28, 28, 1) and y.shape == (50,) and xt.shape == (7, 28, 28, 1)
    assert list(yt) == [9, 2, 1, 1, 6, 1, 4]


def test_load_mnist_is_load_dataset_mnist(mnist_dir, real):
    (x, y), (xt, yt) = load_dataset("mnist", mnist_dir, test_size=20)
    assert np.array_equal(x, real[0][0]) and np.array_equal(yt, real[1][1][:20])


def test_class_names():
    assert class_names("mnist") == [str(d) for d in range(10)]
    names = class_names("fashion_mnist")
    assert names[0] == "T-shirt/top" and names[9] == "Ankle boot" and len(names) == 10
    assert set(DATASETS) == {"mnist", "fashion_mnist"}


def test_unknown_dataset_name(mnist_dir):
    for call in (lambda: load_dataset("cifar10"), lambda: class_names("fashion")):
        with pytest.raises(ValueError, match=r"unknown dataset 'cifar10'|unknown dataset 'fashion'") as err:
            call()
        assert "'mnist', 'fashion_mnist'" in str(err.value)


def _write_idx(path, array, magic=None):
    a = np.ascontiguousarray(array, dtype=np.uint8)
    header = magic if magic is not None else bytes([0, 0, 0x08, a.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in a.shape)
    with gzip.open(path, "wb", compresslevel=1) as f:  # fast: the tests write 47 MB files
        f.write(header + a.tobytes())
    return path


@pytest.fixture(scope="module")
def fashion_raw(fashion_dir):
    return {name: read_idx(fashion_dir / fname) for name, fname in FASHION_FILES.items()}


def _fashion_copy(folder, raw, **replace):
    """Write the four idx files into `folder`, with some arrays replaced."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, fname in FASHION_FILES.items():
        _write_idx(folder / fname, replace.get(name, raw[name]))
    return folder


def test_read_idx_parses_the_header(tmp_path, fashion_raw):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(read_idx(_write_idx(tmp_path / "a.gz", a)), a)
    # our own writer reproduces the published files' arrays exactly
    assert fashion_raw["x_test"].shape == (10000, 28, 28) and fashion_raw["y_train"].shape == (60000,)


def test_idx_truncated_gz(tmp_path, fashion_dir):
    folder = tmp_path / "f"
    folder.mkdir()
    for fname in FASHION_FILES.values():
        (folder / fname).write_bytes((fashion_dir / fname).read_bytes())
    bad = folder / FASHION_FILES["x_test"]
    bad.write_bytes(bad.read_bytes()[:100_000])
    before = hashlib.sha256(bad.read_bytes()).hexdigest()
    with pytest.raises(DatasetError, match=r"t10k-images-idx3-ubyte.gz is damaged .*truncated.*AAE_DATA_DIR"):
        load_dataset("fashion_mnist", folder)
    _check_untouched(bad, before)


def test_idx_bad_magic(tmp_path, fashion_raw):
    folder = _fashion_copy(tmp_path / "f", fashion_raw)
    _write_idx(folder / FASHION_FILES["y_test"], fashion_raw["y_test"], magic=bytes([0x1F, 0x8B, 8, 1]))
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte.gz is not an idx file: bad magic number 1f8b0801"):
        load_dataset("fashion_mnist", folder)


def test_idx_size_mismatch(tmp_path, fashion_raw):
    folder = _fashion_copy(tmp_path / "f", fashion_raw)
    with gzip.open(folder / FASHION_FILES["y_test"], "wb", compresslevel=1) as f:  # header says 10000, 9999 follow
        f.write(bytes([0, 0, 8, 1]) + (10000).to_bytes(4, "big") + fashion_raw["y_test"][:-1].tobytes())
    with pytest.raises(DatasetError, match=r"announces shape \(10000,\) \(10000 bytes of data\) but .* 9999 bytes"):
        load_dataset("fashion_mnist", folder)


def test_idx_wrong_shape(tmp_path, fashion_raw):
    folder = _fashion_copy(tmp_path / "f", fashion_raw, x_test=fashion_raw["x_test"][:5000])
    with pytest.raises(DatasetError, match=r"x_test has shape \(5000, 28, 28\).*expected \(10000, 28, 28\)"):
        load_dataset("fashion_mnist", folder)


def test_idx_label_out_of_range(tmp_path, fashion_raw):
    y = fashion_raw["y_train"].copy()
    y[3] = 10
    folder = _fashion_copy(tmp_path / "f", fashion_raw, y_train=y)
    with pytest.raises(DatasetError, match="labels in y_train must lie in 0..9, found 10.*dataset-fashion-mnist"):
        load_dataset("fashion_mnist", folder)


def test_idx_flipped_byte_fails_digest(tmp_path, fashion_raw):
    x = fashion_raw["x_train"].copy()
    x[59999, 27, 27] ^= 0x80
    folder = _fashion_copy(tmp_path / "f", fashion_raw, x_train=x)
    with pytest.raises(DatasetError, match="x_train fails its SHA-256 check .*canonical Fashion-MNIST"):
        load_dataset("fashion_mnist", folder)


def test_fashion_npz_path(tmp_path, fashion_raw):
    npz = _write(tmp_path / "fashion.npz", fashion_raw)
    (_, y), _ = load_dataset("fashion_mnist", npz)
    assert list(y[:3]) == [9, 0, 0]
    # MNIST's arrays in a Fashion-MNIST place are refused by their digests
    with pytest.raises(DatasetError, match="fails its SHA-256 check"):
        load_dataset("fashion_mnist", _write(tmp_path / "m.npz", {k: np.zeros_like(v) for k, v in fashion_raw.items()}))


def _isolate(monkeypatch, tmp_path, env=None, debian=None):
    """No real place is searched: env, project, Debian folder and home all under tmp_path."""
    if env is None:
        monkeypatch.delenv("AAE_DATA_DIR", raising=False)
    else:
        monkeypatch.setenv("AAE_DATA_DIR", str(env))
    monkeypatch.setattr(data, "DATA", tmp_path / "project" / "data")
    monkeypatch.setattr(data, "FASHION_DEBIAN_DIR", debian or tmp_path / "debian")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(data, "FASHION_URL", "http://127.0.0.1:9/")  # refused at once


def test_fashion_search_order(tmp_path, monkeypatch, fashion_raw):
    explicit = _fashion_copy(tmp_path / "explicit", fashion_raw)
    env = tmp_path / "env"
    env_sub = _fashion_copy(env / "fashion-mnist", fashion_raw)
    debian = _fashion_copy(tmp_path / "debian", fashion_raw)
    _isolate(monkeypatch, tmp_path, env=env, debian=debian)
    assert find_fashion_mnist(explicit) == explicit          # explicit path beats env
    assert find_fashion_mnist() == env_sub                   # env (its fashion-mnist/) beats Debian
    for f in env_sub.iterdir():
        f.unlink()
    _fashion_copy(env, fashion_raw)
    assert find_fashion_mnist() == env                       # or the env folder itself
    for f in FASHION_FILES.values():
        (env / f).unlink()
    assert find_fashion_mnist() == debian                    # env without the files: Debian
    (env / FASHION_FILES["y_test"]).write_bytes(b"")        # three of four files do not count
    assert find_fashion_mnist() == debian
    monkeypatch.delenv("AAE_DATA_DIR")
    assert find_fashion_mnist() == debian


def test_fashion_not_found_says_where_it_looked(tmp_path, monkeypatch):
    _isolate(monkeypatch, tmp_path, env=tmp_path / "nowhere")
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("fashion_mnist")
    msg = str(err.value)
    assert str(tmp_path / "nowhere" / "fashion-mnist") in msg
    assert str(tmp_path / "debian") in msg and ".keras/datasets/fashion-mnist" in msg
    assert "Download from http://127.0.0.1:9/ failed" in msg and "apt-get install dataset-fashion-mnist" in msg
    with pytest.raises(DatasetNotFoundError, match="Downloading was disabled"):
        load_dataset("fashion_mnist", download=False)


def test_fashion_missing_explicit_path(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="No Fashion-MNIST at .*missing .no such file"):
        load_dataset("fashion_mnist", tmp_path / "missing")
    with pytest.raises(DatasetNotFoundError, match="a folder without all four files"):
        load_dataset("fashion_mnist", tmp_path)
