import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parent.parent

import keras  # noqa: E402  (after the environment above; KERAS_BACKEND picks the backend)

# Deterministic kernels, so same-seed runs differ as little as TensorFlow allows. It does not
# make two trainings in one process bit-identical on every CPU (CI still saw 541.77039 vs
# 541.77032), so in-process checks compare to float32 rounding; across processes they are exact.
# JAX and PyTorch on the CPU are deterministic without a switch.
if keras.backend.backend() == "tensorflow":
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()


def results_mtimes():
    """Each file of the project's results/ with its modification time: a test that must not write
    there compares these before and after. A long run going on beside the tests (make
    parzen-reproduction) rewrites only its checkpoint and that file's temporary copy, left out."""
    return {p: p.stat().st_mtime_ns for p in (ROOT / "results").rglob("*")
            if p.is_file() and ".checkpoint" not in p.name}


@pytest.fixture(scope="session")
def mnist_dir():
    """Folder holding the real mnist.npz ($AAE_DATA_DIR or ../shared/data); skip-free: fail loudly."""
    for candidate in (os.environ.get("AAE_DATA_DIR"), ROOT.parent / "shared" / "data", ROOT / "data"):
        if candidate and (Path(candidate) / "mnist.npz").is_file():
            return Path(candidate)
    pytest.fail("mnist.npz not found: set AAE_DATA_DIR to the folder that holds it")


@pytest.fixture(scope="session", autouse=True)
def project_pages_untouched():
    """No test may write the project's own pages (README.md, docs/, results/README.md): a full run
    into a temporary project once rewrote the real README's generated blocks."""
    pages = [ROOT / "README.md", ROOT / "results" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    before = {p: p.read_bytes() for p in pages if p.exists()}
    yield
    changed = [str(p.relative_to(ROOT)) for p, text in before.items() if not p.exists() or p.read_bytes() != text]
    assert not changed, f"the tests changed {changed}"
