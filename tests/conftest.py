import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parent.parent

# Same seed, same numbers, to the bit: without deterministic kernels TensorFlow's threaded
# reductions can differ in the last bit when the CPU is busy (seen in CI: 541.77039 vs 541.77032).
import tensorflow as tf  # noqa: E402

tf.config.experimental.enable_op_determinism()


@pytest.fixture(scope="session")
def mnist_dir():
    """Folder holding the real mnist.npz ($AAE_DATA_DIR or ../shared/data); skip-free: fail loudly."""
    for candidate in (os.environ.get("AAE_DATA_DIR"), ROOT.parent / "shared" / "data", ROOT / "data"):
        if candidate and (Path(candidate) / "mnist.npz").is_file():
            return Path(candidate)
    pytest.fail("mnist.npz not found: set AAE_DATA_DIR to the folder that holds it")
