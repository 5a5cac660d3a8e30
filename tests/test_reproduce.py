"""`python -m aae reproduce`: quick mode end to end, the error paths, determinism, stopping
with SIGINT / SIGTERM, restarting with --from, parameter checks before anything runs."""
import hashlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import pytest
from matplotlib.image import imread
from nbformat.v4 import new_code_cell, new_notebook

from aae.runner import reproduce, runlog, stopping, summary
from aae.runner.reproduce import ReproduceError, parse_overrides
from conftest import results_mtimes
from test_notebooks import figure_cells_without_image, noisy_outputs

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


# AAE_TEST_NOTEBOOKS="adversarial_autoencoder semi_supervised_aae": the quick run runs only these
# notebooks (CI's second backend runs the two whose training steps are the project's own; the
# default backend runs them all).
QUICK_ONLY = os.environ.get("AAE_TEST_NOTEBOOKS", "").split() or None


def quick_notebooks():
    """{name: path} of the notebooks the quick run covers (every one, or those of AAE_TEST_NOTEBOOKS)."""
    return {name: p for name, p in reproduce.discover().items() if QUICK_ONLY is None or name in QUICK_ONLY}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, mnist_dir):
    """Every notebook (or those of AAE_TEST_NOTEBOOKS) in quick mode, once, into a temporary folder,
    with size parameters away from their defaults (SIZES), so a parameter that does not do what its
    name says shows up here."""
    out = tmp_path_factory.mktemp("quick")
    before = {p: p.stat().st_mtime_ns for p in (ROOT / "notebooks").glob("*.ipynb")}
    committed = results_mtimes()
    taken = set().union(*map(reproduce.notebook_parameters, quick_notebooks().values()))
    rows = reproduce.run(only=QUICK_ONLY, quick=True, output_dir=out, progress=False,
                         overrides={k: v for k, v in SIZES.items() if k in taken})
    return out, rows, before, committed


# Size parameters, each away from its default in every notebook that has it: latent_dim = 2 is not
# the default of 02, 06 and 07; 01 and 08 (default 2) run with a 3-D code apart, below, since
# notebook 05 measures 01's VAE only when its code is 2-D.
SIZES = {"n_show": 7, "hidden": [256, 128], "latent_dim": 2, "latent_dim_8d": 3,
         "dense_vae_hidden": [256, 128], "dense_ae_hidden": [64], "hidden_2d_supervised": [96]}


# Plausible ranges of the quick run's headline numbers (2 epochs on 2,000 images): far from the
# full run's, but a broken loss, metric or model lands outside them. kNN: chance is 0.1, and under
# SIZES notebook 02's code is 2-D (0.19 on JAX).
QUICK_RANGES = {"test_neg_elbo_nats": (130, 400), "iwae_nll_nats": (120, 400), "knn_accuracy": (0.13, 1.0),
                "test_bce_per_pixel": (0.05, 0.7), "recommended_test_bce": (0.05, 0.7),
                "recommended_mean_activation": (0.0, 5.0), "parzen_ll_nats": (-1000, 500),
                "classifier_accuracy": (0.5, 1.0)}


def test_quick_mode_end_to_end(quick_run):
    out, rows, before, committed = quick_run
    files = list(quick_notebooks().values())
    assert QUICK_ONLY is None or len(files) == len(QUICK_ONLY)
    assert len(rows) == len(files) and all(name in path.stem for (name, *_), path in zip(rows, files))
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) >= 10
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert imread(png).shape[0] > 50
    runs = json.loads((out / "timings.json").read_text())
    table = (out / "README.md").read_text() if QUICK_ONLY is None else None  # a run of some notebooks writes none
    for name, seconds, numbers in rows:
        [metrics_file] = runs[name]["metrics"]  # the file the notebook wrote, whatever its name
        data = json.loads((out / metrics_file).read_text())
        assert numbers == data["metrics"]["headline"] and numbers
        for key, value in numbers.items():
            if key in QUICK_RANGES:
                low, high = QUICK_RANGES[key]
                assert low <= value <= high, (name, key, value)
            if isinstance(value, float) and table is not None:
                assert f"{key} = {value:.4g}" in table  # the summary shows the notebook's own numbers
        # the parameters recorded are the notebook's own defaults with the quick values injected
        defaults = reproduce._defaults(reproduce.notebook_parameters(reproduce.discover()[name]))
        expected = {**defaults, **{k: v for k, v in {**reproduce.QUICK, **SIZES}.items() if k in defaults}}
        recorded = {k: v for k, v in data["parameters"].items() if k != "results_dir"}
        assert recorded == {k: v for k, v in expected.items() if k != "results_dir"}, name
        executed = nbformat.read(out / "notebooks" / reproduce.discover()[name].name, as_version=4)
        assert not any(o.get("output_type") == "error" for c in executed.cells for o in c.get("outputs", []))
        assert figure_cells_without_image(executed) == [], f"{name}: figure cells with no stored image"
        assert noisy_outputs(executed, allowed=str(out)) == [], name  # the folder it was told to write to
    assert table is None or "| **total** |" in table
    # quick mode never touches the committed notebooks or results
    assert before == {p: p.stat().st_mtime_ns for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert committed == results_mtimes()


def test_the_supervised_mixture_trains_with_its_own_widths(quick_run):
    """Notebook 04's hidden_2d_supervised (SIZES: [96]) builds the supervised mixture, and only it;
    the saved model's record says so, and notebook 05 reads that record."""
    out, *_ = quick_run
    if QUICK_ONLY is not None and "adversarial_autoencoder" not in QUICK_ONLY:
        pytest.skip("notebook 04 is not in this quick run")
    import keras

    def widths(name):
        encoder = keras.saving.load_model(out / "models" / f"aae_{name}_encoder.keras")
        return [layer.units for layer in encoder.layers if isinstance(layer, keras.layers.Dense)][:-1]

    saved = {name: json.loads((out / "models" / f"aae_{name}.json").read_text())["hidden"]
             for name in ("gaussian", "supervised")}
    assert saved == {"gaussian": [256, 128], "supervised": [96]}
    assert widths("gaussian") == [256, 128] and widths("supervised") == [96]


def test_same_seed_same_metrics(quick_run, tmp_path):
    out, *_ = quick_run
    params = reproduce.notebook_parameters(reproduce.discover()["autoencoder"])
    reproduce.run(only=["autoencoder"], quick=True, output_dir=tmp_path, progress=False,
                  overrides={k: v for k, v in SIZES.items() if k in params})  # the values quick_run gave it
    first = json.loads((out / "metrics" / "autoencoder.json").read_text())
    second = json.loads((tmp_path / "metrics" / "autoencoder.json").read_text())
    for key in ("train_seconds",):
        first["metrics"].pop(key), second["metrics"].pop(key)
    first["parameters"].pop("results_dir"), second["parameters"].pop("results_dir")  # two folders
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


def test_a_dying_kernel_is_reported_with_its_last_output(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    _tiny_notebook(nbs / "01_crash.ipynb", "import os, sys\nos.write(2, b'native library says goodbye\\n')\n"
                                           "os._exit(3)")
    with pytest.raises(ReproduceError, match=r"notebook crash .*: its kernel stopped in cell 2 \(import os, sys\)"
                                             r"(.|\n)*native library says goodbye") as info:
        reproduce.run(notebooks_dir=nbs, output_dir=tmp_path / "out", quick=True, progress=False)
    assert "port.cc" not in str(info.value)
    assert not list((tmp_path / "out").glob(".*.ipynb"))


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
    _tiny_notebook(nbs / "01_one.ipynb", "open(results_dir + '/x.txt', 'w').write(repr(x))",
                   params="x = [0]\nresults_dir = '.'")
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
    assert runlog.collapse_carriage_returns("a\rb\rc\nd") == "c\nd"


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
    runlog.clean_metadata(tmp_path / "n.ipynb")
    outs = nbformat.read(tmp_path / "n.ipynb", as_version=4).cells[0].outputs
    assert [(o.name, o.text) for o in outs] == [("stdout", "Epoch 1/2\n 4/4 bar\n"),
                                                ("stderr", "UserWarning: real one\n")]


def test_readme_blocks_are_replaced_between_their_markers_only(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results:start -->\nold\n<!-- results:end -->\nmiddle\n"
                      "<!-- speed:start -->\nold speed\n<!-- speed:end -->\nend\n")
    assert summary.update_readme_block("| new |\n", readme)
    assert summary.update_readme_block("| fast |\n", readme, name="speed")
    assert readme.read_text() == ("intro\n<!-- results:start -->\n| new |\n<!-- results:end -->\nmiddle\n"
                                  "<!-- speed:start -->\n| fast |\n<!-- speed:end -->\nend\n")
    # no markers for that name: the file is left exactly as it was
    before = readme.read_text()
    assert not summary.update_readme_block("x", readme, name="absent")
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


def test_paper_table_puts_the_long_runs_mean_and_spread_beside_the_paper(tmp_path):
    runtime = {"device": "Test CPU (2 cores)", "backend": "jax"}

    def write(path, metrics, parameters):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"metrics": metrics, "parameters": parameters, "runtime": runtime}))

    long = tmp_path / "long-semisupervised" / "metrics"
    def run(error, best, epochs, seconds, cat_d, knn):
        return {"test_error": error, "best_epoch": best, "epochs_run": epochs, "seconds": seconds,
                "history": {"cat_d_accuracy": [0.9, cat_d], "gauss_d_accuracy": [0.7, 0.61]},
                "mean_max_q_test": 0.985, "style_leak": {"knn_accuracy": knn}}

    for seed, error, best, cat_d, knn in ((0, 0.047, 20, 0.58, 0.71), (1, 0.051, 24, 0.6, 0.8), (2, 0.052, 23, 0.59, 0.77)):
        write(long / f"long_100_labels_seed{seed}.json", run(error, best, 24, 1500.0, cat_d, knn),
              {"seed": seed, "n_labels": 100, "batch_norm": True, "latent_dim": 5})
    # a run of the earlier recipe (its arguments have no batch_norm): the table says so
    write(long / "long_1000_labels_seed0.json", run(0.0345, 10, 10, 660.0, 0.57, 0.5),
          {"seed": 0, "n_labels": 1000, "latent_dim": 10})
    for seed, error, used in ((0, 0.20, 16), (1, 0.10, 15)):  # clustering: no epoch is chosen
        write(long / f"long_16_clusters_seed{seed}.json",
              {"test_error": error, "epochs_run": 40, "seconds": 1800.0, "clusters_used": used},
              {"seed": seed, "n_labels": 0, "n_classes": 16, "batch_norm": True, "latent_dim": 5,
               "hidden": [500, 500]})
    (long / "long_1000_labels_seed1.partial.json").write_text("{}")  # a run under way: not read
    parzen = {"parzen": {"mean_nats": 330.04, "stderr_nats": 1.96},
              "experiments": {"gaussian_8d": {"train_seconds": 2400.0}}}
    write(tmp_path / "long-aae" / "metrics" / "adversarial_autoencoder.json", parzen,
          {"epochs_8d": 60, "hidden_8d": [1200, 1200], "dropout_8d": 0.2, "prior_scale_8d": 5.0})
    table = summary.paper_table(tmp_path)
    # mean 5.00, sample std (ddof 1) of 4.7, 5.1, 5.2 = 0.26
    assert ("| semi-supervised error, 100 labels | 1.90 ± 0.10 % | - | 5.00 ± 0.26 % (3 seeds: 0, 1, 2; 24 epochs, "
            "the weights of epoch 20, 24, 23 chosen on validation; Test CPU (2 cores), JAX, 25 min per run) |") in table
    assert "| 1.60 ± 0.08 % | - | 3.45 % (seed 0; 10 epochs, the weights of epoch 10 chosen" in table
    assert "JAX, 11 min per run; earlier recipe: z of 10, no batch norm, two separate discriminators) |" in table
    # mean 15.0, sample std of 20 and 10: 7.07
    assert ("| clustering error, 16 clusters | 9.55 ± 2.1 % | - | 15.00 ± 7.07 % (2 seeds: 0, 1; 40 epochs, "
            "500x500 units, clusters used 16, 15; Test CPU (2 cores), JAX, 30 min per run) |") in table
    assert "| clustering error, 30 clusters | 4.10 ± 1.13 % | - | - |" in table
    assert ("| Parzen log-likelihood, 8-D Gaussian AAE | 340 ± 2 nats | - | 330.0 ± 2.0 nats (60 epochs, "
            "[1200, 1200] units, dropout 0.2, prior std 5.0; Test CPU (2 cores), JAX, 40 min) |") in table
    assert "reproduction's recipe" not in table  # no such runs: no such row
    # scripts/tune_parzen_aae.py's runs at the published reproduction's recipe: a row of their own
    repro = tmp_path / "parzen-reproduction" / "metrics"
    recipe = {"epochs": 200, "hidden": [1200, 1200], "dropout": 0.2, "d_dropout": 0.2, "prior_scale": 5.0,
              "lr": 2e-4, "g_lr": 1e-4, "batch_size": 100}
    write(repro / "reproduction_seed0.json", {"parzen": {"mean_nats": 341.04, "stderr_nats": 2.0},
                                              "seconds": 7200.0, "segments": 2}, {**recipe, "seed": 0})
    write(repro / "reproduction_seed1.json", {"parzen": {"mean_nats": 345.0, "stderr_nats": 2.0},
                                              "seconds": 8400.0}, {**recipe, "seed": 1})
    write(repro / "reproduction_seed2.json", {"validation_parzen_nats": 300.0, "seconds": 60.0},
          {**recipe, "seed": 2})  # scored on held-out images only (no --test): not a test number
    table = summary.paper_table(tmp_path)
    # mean 343.02, sample std of 341.04 and 345.0: 2.80; the time is the mean per run
    assert ("| Parzen log-likelihood, the published reproduction's recipe | 340 ± 2 nats (the reproduction: "
            "345 ± 2) | - | 343.0 ± 2.8 nats (2 seeds: 0, 1; 200 epochs, 1200x1200 units, dropout 0.2 "
            "(discriminator 0.2), prior std 5.0, Adam 0.0002 / 0.0001 with cosine decay, batch 100; Test CPU "
            "(2 cores), JAX, 130 min per run, in up to 2 sittings) |") in table
    (repro / "reproduction_seed1.json").unlink()
    assert "| 341.0 ± 2.0 nats (seed 0; 200 epochs," in summary.paper_table(tmp_path)  # ± the test images' stderr
    assert "Notebook 06 has not run into this folder yet." in table
    assert "| 100 labels, 3 seeds | 0.58-0.60 / 0.61 | 0.98 | 71-80 % |" in table  # min-max over seeds
    assert "| 1,000 labels, 1 seed | 0.57 / 0.61 | 0.98 | 50 % |" in table
    assert "earlier recipe |" not in table.splitlines()[0]  # no such folder: no such column

    # the first longer runs, kept in a folder of their own: a column of their own, and their failure table
    earlier = tmp_path / "long-semisupervised" / "earlier-recipe" / "metrics"
    write(earlier / "long_100_labels_seed0.json", run(0.0459, 27, 40, 4800.0, 0.53, 0.67),
          {"seed": 0, "n_labels": 100, "latent_dim": 10, "hidden": [1000, 1000]})
    table = summary.paper_table(tmp_path)
    lines = table.splitlines()
    assert lines[0] == ("| result (MNIST) | paper | ours, notebook default | ours, longer run | "
                        "ours, longer run, earlier recipe |")
    assert all(line.count("|") == 6 for line in lines[:8]), lines[:8]  # every row has the fifth cell, Parzen too
    assert ("| 5.00 ± 0.26 % (3 seeds: 0, 1, 2; 24 epochs, the weights of epoch 20, 24, 23 chosen on validation; "
            "Test CPU (2 cores), JAX, 25 min per run) | 4.59 % (seed 0; 40 epochs, 1000x1000 units, the weights of "
            "epoch 27 chosen on validation; Test CPU (2 cores), JAX, 80 min per run; earlier recipe") in table
    assert "| longer runs, earlier recipe, last epoch |" in table and "| 100 labels, 1 seed | 0.53 / 0.61 |" in table

    # notebook 06's default run: three seeds for 100 labels, one for 1,000 (which gets no "± 0.00")
    write(tmp_path / "metrics" / "semi_supervised_aae.json",
          {"epochs": 3, "seconds": 600.0, "semi_supervised": {
              "100": {"test_error_percent_mean": 10.5, "test_error_percent_std": 1.25,
                      "test_error_percent_per_seed": {"0": 9.0, "1": 11.0, "2": 11.5}},
              "1000": {"test_error_percent_mean": 5.2, "test_error_percent_std": 0.0,
                       "test_error_percent_per_seed": {"0": 5.2}}}}, {})
    table = summary.paper_table(tmp_path)
    assert "| 1.90 ± 0.10 % | 10.50 ± 1.25 % (3 seeds, 3 epochs) |" in table
    assert "| 1.60 ± 0.08 % | 5.20 % (1 seed, 3 epochs) |" in table


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


# --- parameter checks: every bad value is named before any kernel starts ----------------------

@pytest.mark.parametrize("overrides, message", [
    ({"epochs": -1}, "epochs = -1: epochs takes a positive integer (in variational_autoencoder, "
                     "autoencoder, sparse_autoencoder, "),
    ({"batch_size": "abc"}, "batch_size = 'abc': batch_size takes a positive integer"),
    ({"epochs": 2.5}, "epochs = 2.5: epochs takes a positive integer"),
    ({"learning_rate": 0}, "learning_rate = 0: learning_rate takes a number > 0"),
    ({"precision": "float16"}, "precision = 'float16': precision takes one of 'auto', 'float32', "
                               "'mixed_bfloat16'"),
    ({"hidden": [512, -1]}, "hidden = [512, -1]: hidden takes a list, each item a positive integer"),
    ({"models": ["vae", 3]}, "models = ['vae', 3]: models takes None or a non-empty list"),
    ({"dataset": "cifar"}, "dataset = 'cifar': dataset takes one of 'mnist', 'fashion_mnist'"),
])
def test_bad_values_are_named_before_anything_runs(tmp_path, overrides, message):
    out = tmp_path / "out"
    with pytest.raises(ReproduceError, match="nothing was run") as info:
        reproduce.run(overrides=overrides, quick=True, output_dir=out, progress=False)
    assert message in str(info.value)
    assert not out.exists()  # not even the output folder: no kernel started


def test_a_value_of_another_kind_than_the_default_is_refused(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    _tiny_notebook(nbs / "01_one.ipynb", "pass")  # x = 1: an integer
    with pytest.raises(ReproduceError, match=r"x = 'abc': x takes an integer, like its default 1 \(in one\)"):
        reproduce.run(overrides={"x": "abc"}, notebooks_dir=nbs, output_dir=tmp_path / "o")


def test_bad_value_on_the_command_line_fails_fast():
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "aae", "reproduce", "--quick", "-p", "batch_size=abc",
                           "--output-dir", str(Path(tempfile.gettempdir()) / "aae-never-written")],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 1
    assert "error: parameter values the notebooks cannot use; nothing was run" in proc.stderr
    assert "batch_size = 'abc': batch_size takes a positive integer" in proc.stderr
    assert time.perf_counter() - start < 60  # no kernel, no training: seconds, not minutes
    assert "Could not find cuda" not in proc.stdout + proc.stderr  # no TensorFlow start-up log


# --- where executed notebooks go, --from ---------------------------------------------------

def test_output_dir_elsewhere_leaves_the_notebooks_as_they_were(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    _tiny_notebook(nbs / "01_one.ipynb", "print('ran')")
    before = (nbs / "01_one.ipynb").read_bytes()
    reproduce.run(notebooks_dir=nbs, output_dir=tmp_path / "elsewhere", progress=False)  # a full run
    assert (nbs / "01_one.ipynb").read_bytes() == before
    executed = nbformat.read(tmp_path / "elsewhere" / "notebooks" / "01_one.ipynb", as_version=4)
    assert "ran" in executed.cells[-1].outputs[0]["text"]


def _tiny_project(tmp_path, monkeypatch):
    """A project folder (notebooks/, results/) the runner takes for its own."""
    root = tmp_path / "project"
    (root / "notebooks").mkdir(parents=True)
    for name, value in (("PROJECT_ROOT", root), ("RESULTS", root / "results")):
        monkeypatch.setattr(reproduce, name, value)
    monkeypatch.setattr(summary, "PROJECT_ROOT", root)  # the pages its generated blocks go to (README.md, docs/)
    return root


def test_a_full_run_into_results_injects_nothing_and_reruns_leave_no_diff(tmp_path, monkeypatch):
    root = _tiny_project(tmp_path, monkeypatch)
    path = root / "notebooks" / "01_one.ipynb"
    _tiny_notebook(path, "import pathlib\nprint('kept:', (pathlib.Path(results_dir) / 'kept.txt').exists())",
                   params='# Parameters: x\nx = 1\nresults_dir = "../results"')
    (root / "results").mkdir()
    (root / "results" / "kept.txt").write_text("")
    reproduce.run(notebooks_dir=root / "notebooks", output_dir=root / "results", progress=False)
    first = path.read_text()
    nb = nbformat.reads(first, as_version=4)
    assert [c.metadata.get("tags", []) for c in nb.cells] == [["parameters"], []]  # no injected cell
    assert nb.cells[-1].outputs[0]["text"] == "kept: True\n"  # it ran in notebooks/ and found ../results
    assert "| one |" in (root / "results" / "README.md").read_text()
    assert "papermill" not in first and str(tmp_path) not in first
    reproduce.run(notebooks_dir=root / "notebooks", output_dir=root / "results", progress=False)
    assert path.read_text() == first  # a re-run changes nothing that did not change
    assert not (root / "results" / "notebooks").exists()


def test_a_results_folder_inside_the_project_is_passed_relative(tmp_path, monkeypatch):
    root = _tiny_project(tmp_path, monkeypatch)
    _tiny_notebook(root / "notebooks" / "01_one.ipynb", "print(results_dir)",
                   params='x = 1\nresults_dir = "../results"')
    out = root / "results" / "gpu"
    reproduce.run(notebooks_dir=root / "notebooks", output_dir=out, progress=False)
    executed = (out / "notebooks" / "01_one.ipynb").read_text()
    assert "../results/gpu" in executed and str(tmp_path) not in executed
    elsewhere = tmp_path / "elsewhere"
    reproduce.run(notebooks_dir=root / "notebooks", output_dir=elsewhere, progress=False)
    assert str(elsewhere) in (elsewhere / "notebooks" / "01_one.ipynb").read_text()  # outside: absolute


def test_only_values_that_differ_from_the_defaults_are_injected(tmp_path):
    path = tmp_path / "01_one.ipynb"
    _tiny_notebook(path, "pass", params="epochs = 2\nx = 1.0\nresults_dir = '.'")
    params = reproduce.notebook_parameters(path)
    plan = reproduce._plan(path, params, quick=True, overrides={"x": 1.0, "epochs": 3}, results_dir=tmp_path)
    assert plan == {"epochs": 3, "results_dir": str(tmp_path)}  # x = 1.0 is its default already
    assert reproduce._plan(path, params, False, {"x": 1}, tmp_path)["x"] == 1  # an int is not the float default


def test_from_restarts_at_a_notebook_and_summarises_all(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    for i, name in enumerate(["one", "two", "three"], 1):
        _tiny_notebook(nbs / f"0{i}_{name}.ipynb", f"open(results_dir + '/ran.txt', 'a').write('{name} ')")
    out = tmp_path / "out"
    with pytest.raises(ReproduceError, match=r"--from two keeps the results of the notebooks before it, "
                                             r"but .* has none of one"):
        reproduce.run(start="two", notebooks_dir=nbs, output_dir=out, quick=True, progress=False)
    reproduce.run(notebooks_dir=nbs, output_dir=out, quick=True, progress=False)
    first = json.loads((out / "timings.json").read_text())
    rows = reproduce.run(start="02_two", notebooks_dir=nbs, output_dir=out, quick=True, progress=False)
    assert [r[0] for r in rows] == ["two", "three"]
    assert (out / "ran.txt").read_text() == "one two three two three "
    assert json.loads((out / "timings.json").read_text())["one"] == first["one"]  # kept
    table = (out / "README.md").read_text()
    assert all(f"| {name} |" in table for name in ("one", "two", "three"))
    with pytest.raises(ReproduceError, match="--from: unknown notebook name 'four'"):
        reproduce.run(start="four", notebooks_dir=nbs, output_dir=out)
    with pytest.raises(ReproduceError, match="use --only or --from, not both"):
        reproduce.run(start="two", only=["one"], notebooks_dir=nbs, output_dir=out)


# --- the live log -----------------------------------------------------------------------------

def test_live_log_shows_one_line_per_epoch_and_no_redraws():
    lines = []
    live = runlog.LiveLog(lines.append)

    def bar(step):  # what Keras's progress bar writes on each redraw (verbose=1)
        return ("\b" * 30 + f"\r\x1b[1m{step}/469\x1b[0m \x1b[32m━━━━━━━━━━\x1b[0m\x1b[37m━━━━\x1b[0m "
                "\x1b[1m3s\x1b[0m 6ms/step - loss: 195.1")
    live.stdout.write("dtype policy float32\nEpoch 1/2\n" + bar(32))
    live.stdout.write(bar(64) + bar(469) + "\nEpoch 2/2\n" + bar(32))
    live.stderr.write("I0000 00:00:1795463816.133261   17442 port.cc:153] oneDNN custom operations are on.\n"
                      "UserWarning: a real one\n")
    live.stdout.write(bar(469) + "\nEpoch 1/5\n469/469 - 12s - 25ms/step - loss: 1.0\n3/10 done\n")
    live.flush()
    assert lines == ["dtype policy float32", "Epoch 1/2: 3s 6ms/step - loss: 195.1",
                     "UserWarning: a real one", "Epoch 2/2: 3s 6ms/step - loss: 195.1",
                     "Epoch 1/5: 12s - 25ms/step - loss: 1.0", "3/10 done"]


def test_time_left_comes_from_the_last_runs_timings():
    clock = runlog.Clock(["a", "b", "c"], {"a": 100.0, "b": 50.0, "c": 20.0})
    clock.begin("b")
    assert clock.prefix().startswith("[2/3 b 0:0")
    assert 69 <= clock.left() <= 70  # b's 50 s (just begun) and c's 20 s
    assert re.fullmatch(r"run 0:0\d, about 1:10 left", clock.status())
    assert clock.left(done=True) == 20.0  # b finished: only c is left
    unknown = runlog.Clock(["a", "d"], {"a": 1.0})
    unknown.begin("a")
    assert unknown.left() is None and "left" not in unknown.status()


def test_backup_puts_back_what_a_stopped_notebook_wrote(tmp_path):
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "a.json").write_text("old")
    (tmp_path / "fig.png").write_text("old fig")
    (tmp_path / "notebooks").mkdir()  # the runner's own: not the notebook's to change
    (tmp_path / "notebooks" / "01_a.ipynb").write_text("kept")
    backup = stopping.Backup(tmp_path)
    (tmp_path / "fig.png").unlink()
    (tmp_path / "metrics" / "a.json").write_text("new")
    (tmp_path / "new.png").write_text("half of a run")
    changed = backup.restore()
    assert sorted(map(str, changed)) == ["fig.png", "metrics/a.json", "new.png"]
    assert (tmp_path / "fig.png").read_text() == "old fig"
    assert (tmp_path / "metrics" / "a.json").read_text() == "old"
    assert not (tmp_path / "new.png").exists()
    assert not backup.copy.exists()


# --- stopping a run: SIGINT (Ctrl-C) and SIGTERM to its process group ---------------------------

def _tree_digest(*folders):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest()
            for folder in folders for p in sorted(folder.rglob("*")) if p.is_file()}


def _kernels_of(pid):
    """Live processes that jupyter_client started for runner `pid` (they carry JPY_PARENT_PID)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                env = (entry / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if f"JPY_PARENT_PID={pid}".encode() in env:
                found.append(int(entry.name))
    return found


class _Run:
    """A runner started in its own process group (as a terminal starts a command), its output
    read line by line as it comes."""

    def __init__(self, args):
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, start_new_session=True, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines, self.stderr, self._queue = [], [], queue.Queue()
        threading.Thread(target=self._read, args=(self.proc.stdout, self._queue.put), daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr.append), daemon=True).start()

    @staticmethod
    def _read(stream, put):
        for line in stream:
            put(line)

    def wait_for(self, pattern, timeout=300):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=1)
            except queue.Empty:
                assert self.proc.poll() is None, f"runner ended early:\n{''.join(self.lines)}{''.join(self.stderr)}"
                continue
            self.lines.append(line)
            if re.search(pattern, line):
                return line
        raise AssertionError(f"no line matching {pattern!r} in {timeout} s:\n{''.join(self.lines)}")

    def stop(self, signum, timeout=60):
        """Signal the whole process group; returns (exit status, seconds until the runner ended)."""
        start = time.monotonic()
        os.killpg(self.proc.pid, signum)
        status = self.proc.wait(timeout=timeout)
        return status, time.monotonic() - start


def _check_stopped_cleanly(run, out, committed):
    assert _kernels_of(run.proc.pid) == []
    assert not list(out.glob(".*.ipynb"))  # the temporary notebook is gone
    assert committed == _tree_digest(ROOT / "notebooks", ROOT / "results")


def test_sigint_stops_a_quick_run_mid_notebook(tmp_path, mnist_dir):
    out = tmp_path / "out"
    committed = _tree_digest(ROOT / "notebooks", ROOT / "results")
    run = _Run(["-m", "aae", "reproduce", "--quick", "--output-dir", str(out)])
    run.wait_for(r"^    done in")  # notebook 1 finished ...
    run.wait_for(r"^\[2/\d+ autoencoder [\d:]+\] epoch 1/2 - ")  # ... and notebook 2 is training
    assert _kernels_of(run.proc.pid)  # the check below would see a kernel left behind
    status, seconds = run.stop(signal.SIGINT)
    print(f"SIGINT: stopped in {seconds:.1f} s")
    assert status == 130
    assert seconds < 10
    message = "".join(run.stderr)
    assert re.search(r"stopped by Ctrl-C \(SIGINT\) in notebook autoencoder \(02_autoencoder.ipynb\) "
                     r"in cell \d+ \(", message), message
    assert "keep their results (variational_autoencoder)" in message
    assert "--from autoencoder" in message
    _check_stopped_cleanly(run, out, committed)
    # the finished notebook keeps its results; the stopped one left nothing
    assert (out / "metrics" / "variational_autoencoder.json").exists()
    assert (out / "notebooks" / "01_variational_autoencoder.ipynb").exists()
    assert list(json.loads((out / "timings.json").read_text())) == ["variational_autoencoder"]
    assert not (out / "metrics" / "autoencoder.json").exists()
    assert not list(out.glob("autoencoder_*.png"))
    assert not (out / "notebooks" / "02_autoencoder.ipynb").exists()
    assert not (out / "README.md").exists()


def test_sigterm_stops_a_quick_run_mid_notebook(tmp_path, mnist_dir):
    out = tmp_path / "out"
    committed = _tree_digest(ROOT / "notebooks", ROOT / "results")
    run = _Run(["-m", "aae", "reproduce", "--quick", "--output-dir", str(out)])
    run.wait_for(r"^\[1/\d+ variational_autoencoder [\d:]+\] epoch 1/2 - ")
    status, seconds = run.stop(signal.SIGTERM)
    print(f"SIGTERM: stopped in {seconds:.1f} s")
    assert status == 143
    assert seconds < 10
    message = "".join(run.stderr)
    assert "stopped by SIGTERM in notebook variational_autoencoder" in message, message
    assert "no notebook had finished" in message
    _check_stopped_cleanly(run, out, committed)
    assert not (out / "metrics").exists() or not list((out / "metrics").iterdir())
    assert not list(out.glob("*.png")) and not (out / "notebooks").exists()


def test_a_kernel_that_ignores_the_interrupt_is_killed(tmp_path):
    nbs, out = tmp_path / "nbs", tmp_path / "out"
    nbs.mkdir()
    _tiny_notebook(nbs / "01_deaf.ipynb", "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                                          "print('ignoring SIGINT', flush=True)\ntime.sleep(300)")
    code = ("import sys\nfrom aae.runner.reproduce import Stopped, run\n"
            f"try:\n    run(notebooks_dir={str(nbs)!r}, output_dir={str(out)!r}, quick=True)\n"
            "except Stopped as exc:\n    print(exc, file=sys.stderr)\n    sys.exit(exc.status)\n")
    run = _Run(["-c", code])
    run.wait_for(r"ignoring SIGINT", timeout=120)
    status, seconds = run.stop(signal.SIGINT)
    assert status == 130
    assert stopping.GRACE_SECONDS <= seconds < stopping.GRACE_SECONDS + 6
    assert "stopped by Ctrl-C (SIGINT) in notebook deaf (01_deaf.ipynb) in cell 2 (import signal, time)" \
        in "".join(run.stderr)
    assert _kernels_of(run.proc.pid) == [] and not list(out.glob(".*.ipynb"))


def test_the_notebooks_with_a_2d_code_run_with_a_latent_space_of_more_than_two_dimensions(tmp_path):
    """latent_dim is a real knob: with 3 dimensions the scatter shows a PCA view and the sweep
    varies two chosen dimensions, in the VAE notebook and the convolutional one."""
    reproduce.run(only=["variational_autoencoder", "convolutional_autoencoders"], quick=True,
                  output_dir=tmp_path, progress=False,
                  overrides={"latent_dim": 3, "sweep_dims": [0, 2], "epochs": 1})
    data = json.loads((tmp_path / "metrics" / "variational_autoencoder.json").read_text())
    assert data["parameters"]["latent_dim"] == 3 and data["parameters"]["sweep_dims"] == [0, 2]
    assert 100 < data["metrics"]["test_neg_elbo_nats"] < 400
    conv = json.loads((tmp_path / "metrics" / "convolutional_autoencoders.json").read_text())
    assert conv["parameters"]["latent_dim"] == 3
    for name in ("vae_scatter", "vae_latent_sweep", "conv_vae_scatter", "conv_vae_latent_sweep"):
        assert (tmp_path / f"{name}.png").is_file(), name
    for path in (tmp_path / "notebooks").glob("*.ipynb"):
        executed = nbformat.read(path, as_version=4)
        assert figure_cells_without_image(executed) == [], path.name
