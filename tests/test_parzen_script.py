"""scripts/tune_parzen_aae.py: a run stopped part-way carries on from its checkpoint."""
import importlib.util
import json

import pytest

from conftest import ROOT

spec = importlib.util.spec_from_file_location("tune_parzen_aae", ROOT / "scripts" / "tune_parzen_aae.py")
script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(script)

TINY = ["--epochs", "3", "--train-size", "1000", "--hidden", "16", "--d-hidden", "16", "--samples", "200",
        "--batch-size", "100", "--dropout", "0.2", "--d-dropout", "0.2", "--eval-every", "1", "--test"]


def run(tmp_path, name, *extra):
    script.main(["--name", name, "--out", str(tmp_path), *TINY, *extra])
    path = tmp_path / "metrics" / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def test_stopped_run_carries_on_from_its_checkpoint(tmp_path, mnist_dir, monkeypatch):
    monkeypatch.setenv("AAE_DATA_DIR", str(mnist_dir))
    whole = run(tmp_path, "whole")["metrics"]
    assert [e["epoch"] for e in whole["validation_curve"]] == [1, 2, 3]
    assert "segments" not in whole
    assert whole["parzen"]["test_images"] == 10_000 and whole["parzen"]["samples"] == 200
    assert whole["parzen"]["sigma"] == whole["sigma"]
    assert (tmp_path / "whole_samples.png").read_bytes()[:4] == b"\x89PNG"

    assert run(tmp_path, "split", "--stop-after", "2") is None  # no metrics yet, only the checkpoint
    checkpoint = tmp_path / "split.checkpoint.npz"
    assert checkpoint.is_file()
    with pytest.raises(SystemExit, match="other settings.*dropout"):
        script.main(["--name", "split", "--out", str(tmp_path), *TINY, "--dropout", "0.1"])
    split = run(tmp_path, "split")["metrics"]
    assert not checkpoint.exists()
    assert split["segments"] == 2
    # The first sitting's two epochs are the uninterrupted run's; the third shuffles afresh.
    first, second = whole["validation_curve"], split["validation_curve"]
    assert [e["validation_parzen_nats"] for e in first[:2]] == pytest.approx(
        [e["validation_parzen_nats"] for e in second[:2]], abs=1e-3)
    assert second[2]["validation_parzen_nats"] == pytest.approx(first[2]["validation_parzen_nats"], abs=10)
