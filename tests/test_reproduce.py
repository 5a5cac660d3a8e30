"""`python -m aae reproduce`: quick mode end to end, the error paths, determinism."""
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from matplotlib.image import imread
from nbformat.v4 import new_code_cell, new_notebook

from aae import reproduce
from aae.reproduce import ReproduceError, parse_overrides

ROOT = Path(__file__).resolve().parent.parent


def _finite_numbers(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _finite_numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _finite_numbers(v)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield obj


def _tiny_notebook(path, body, params="x = 1\nresults_dir = '.'"):
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cell = new_code_cell(params)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, new_code_cell(body)]
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, mnist_dir):
    """Every notebook in quick mode, once, into a temporary folder."""
    out = tmp_path_factory.mktemp("quick")
    before = {p: p.stat().st_mtime_ns for p in (ROOT / "notebooks").glob("*.ipynb")}
    committed = {p: p.stat().st_mtime_ns for p in (ROOT / "results").rglob("*") if p.is_file()}
    rows = reproduce.run(quick=True, output_dir=out, progress=False)
    return out, rows, before, committed


def test_quick_mode_end_to_end(quick_run):
    out, rows, before, committed = quick_run
    names = [r[0] for r in rows]
    assert names == list(reproduce.discover())
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) >= 10
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert imread(png).shape[0] > 50
    for name in names:
        data = json.loads((out / "metrics" / f"{name}.json").read_text())
        numbers = list(_finite_numbers(data["metrics"]))
        assert numbers and all(abs(v) < float("inf") for v in numbers)
        assert data["parameters"]
        executed = nbformat.read(out / "notebooks" / reproduce.discover()[name].name, as_version=4)
        assert not any(o.get("output_type") == "error" for c in executed.cells for o in c.get("outputs", []))
    assert "| **total** |" in (out / "README.md").read_text()
    # quick mode never touches the committed notebooks or results
    assert before == {p: p.stat().st_mtime_ns for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert committed == {p: p.stat().st_mtime_ns for p in (ROOT / "results").rglob("*") if p.is_file()}


def test_same_seed_same_metrics(quick_run, tmp_path):
    out, *_ = quick_run
    reproduce.run(only=["autoencoder"], quick=True, output_dir=tmp_path, progress=False)
    first = json.loads((out / "metrics" / "autoencoder.json").read_text())
    second = json.loads((tmp_path / "metrics" / "autoencoder.json").read_text())
    for key in ("train_seconds",):
        first["metrics"].pop(key), second["metrics"].pop(key)
    assert first == second


def test_failing_notebook_names_cell_and_keeps_earlier_results(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    _tiny_notebook(nbs / "01_good.ipynb", "open(results_dir + '/good.txt', 'w').write('kept')")
    _tiny_notebook(nbs / "02_bad.ipynb", "raise ValueError('boom on purpose')")
    original = (nbs / "02_bad.ipynb").read_bytes()
    with pytest.raises(ReproduceError, match=r"notebook bad .* failed in cell 2 .*ValueError: boom on purpose"):
        reproduce.run(notebooks_dir=nbs, output_dir=tmp_path / "out", quick=True, progress=False)
    assert (tmp_path / "out" / "good.txt").read_text() == "kept"
    assert (tmp_path / "out" / "notebooks" / "01_good.ipynb").exists()
    assert (tmp_path / "out" / "failed" / "02_bad.ipynb").exists()
    assert (nbs / "02_bad.ipynb").read_bytes() == original  # the user's notebook is untouched
    assert not list((tmp_path / "out").glob(".*.ipynb"))  # no temporary files left


def test_unknown_names_and_parameters(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    _tiny_notebook(nbs / "01_one.ipynb", "pass")
    with pytest.raises(ReproduceError, match=r"unknown notebook name\(s\) \['two'\]; valid names: one"):
        reproduce.run(only=["two"], notebooks_dir=nbs, output_dir=tmp_path)
    with pytest.raises(ReproduceError, match=r"unknown parameter\(s\) \['epoch'\]; .* take: results_dir, x"):
        reproduce.run(overrides={"epoch": 3}, notebooks_dir=nbs, output_dir=tmp_path)


def test_parameter_override_reaches_notebook(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    _tiny_notebook(nbs / "01_one.ipynb", "open(results_dir + '/x.txt', 'w').write(repr(x))")
    reproduce.run(overrides={"x": [1, 2]}, notebooks_dir=nbs, output_dir=tmp_path / "o", quick=True, progress=False)
    assert (tmp_path / "o" / "x.txt").read_text() == "[1, 2]"


def test_parse_overrides():
    assert parse_overrides(["epochs=5", "lr=1e-3", "name=abc", "xs=[1, 2]"]) == \
        {"epochs": 5, "lr": 1e-3, "name": "abc", "xs": [1, 2]}
    with pytest.raises(ReproduceError, match="-p expects key=value"):
        parse_overrides(["epochs"])


def test_command_line_error_exit_code():
    proc = subprocess.run([sys.executable, "-m", "aae", "reproduce", "--only", "nope"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 1
    assert "unknown notebook name(s) ['nope']" in proc.stderr


def test_carriage_returns_collapsed():
    assert reproduce._collapse_carriage_returns("a\rb\rc\nd") == "c\nd"


def test_clean_outputs(tmp_path):
    nb = new_notebook()
    cell = new_code_cell("x")
    cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text=(
                        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
                        "I0000 00:00:1795463816.133261   17442 port.cc:153] oneDNN custom operations are on.\n")),
                    nbformat.v4.new_output("stream", name="stdout", text="Epoch 1/2\n\r 1/4 bar"),
                    nbformat.v4.new_output("stream", name="stdout", text="\r 4/4 bar\n"),
                    nbformat.v4.new_output("stream", name="stderr", text="UserWarning: real one\n")]
    nb.cells = [cell]
    nbformat.write(nb, tmp_path / "n.ipynb")
    reproduce._clean_metadata(tmp_path / "n.ipynb")
    outs = nbformat.read(tmp_path / "n.ipynb", as_version=4).cells[0].outputs
    assert [(o.name, o.text) for o in outs] == [("stdout", "Epoch 1/2\n 4/4 bar\n"),
                                                ("stderr", "UserWarning: real one\n")]


def test_readme_blocks_are_replaced_between_their_markers_only(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results:start -->\nold\n<!-- results:end -->\nmiddle\n"
                      "<!-- speed:start -->\nold speed\n<!-- speed:end -->\nend\n")
    assert reproduce.update_readme_block("| new |\n", readme)
    assert reproduce.update_readme_block("| fast |\n", readme, name="speed")
    assert readme.read_text() == ("intro\n<!-- results:start -->\n| new |\n<!-- results:end -->\nmiddle\n"
                                  "<!-- speed:start -->\n| fast |\n<!-- speed:end -->\nend\n")
    # no markers for that name: the file is left exactly as it was
    before = readme.read_text()
    assert not reproduce.update_readme_block("x", readme, name="absent")
    assert readme.read_text() == before


def test_speed_table_reads_the_benchmark_file():
    import sys
    sys.path.insert(0, str(ROOT))
    from benchmarks.common import speed_table

    side = {"samples_per_second": 1000.0, "test_loss_mean": 150.0, "fraction_of_gemm": 0.25}
    machine = {"device": "Test CPU (2 cores)", "backend_version": "9.9", "keras": "3.x"}
    data = {"jax": {"vae": {"ours": {**side, "samples_per_second": 2500.0}, "reference": side,
                            "speedup": 2.5}, "machine": machine},
            "tensorflow": {"vae": {"ours": side, "reference": side, "speedup": 1.0}}}
    table = speed_table(data)
    assert "| JAX | 2,500 samples/s | 1,000 samples/s | 2.50x | 150.00 / 150.00 | 25% / 25% |" in table
    assert "| TensorFlow | 1,000 samples/s | 1,000 samples/s | 1.00x |" in table
    # TensorFlow's row comes first, whatever the file's order; only measured machines are named
    assert table.index("| TensorFlow |") < table.index("| JAX |")
    assert "JAX 9.9 on Test CPU (2 cores)" in table and "Keras 3.x" in table and "autoencoder" not in table


def test_backend_choice_reaches_the_kernels_or_says_how_to_install(monkeypatch):
    import importlib.util
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    installed = next(b for b in ("jax", "torch", "tensorflow") if importlib.util.find_spec(b))
    assert reproduce.use_backend(installed) == installed
    assert os.environ["KERAS_BACKEND"] == installed  # papermill's kernels inherit it
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real_find_spec(name, *a))
    with pytest.raises(reproduce.ReproduceError, match=r"torch backend is not installed.*requirements-torch.txt"):
        reproduce.use_backend("torch")
    with pytest.raises(SystemExit):  # argparse refuses names that are no backend
        reproduce.main(["reproduce", "--backend", "theano"])
