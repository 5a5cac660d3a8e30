"""The repository as a user gets it: no machine's paths in it, and a copy in another folder runs a
notebook by hand (papermill with no injected path) into its own results/."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import papermill
import pytest

from aae.paths import PROJECT_ROOT, project_root, results_folder
from conftest import results_mtimes

ROOT = Path(__file__).resolve().parent.parent
# Absolute paths of this machine, and the usual roots of anyone's machine.
ABSOLUTE = re.compile(r"(?<![\w.~])(?:/(?:home|Users|root|work|tmp|mnt|private/var)/[\w.-]+|[A-Z]:\\\\[\w.-]+)")


def _committed_text_files():
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        path = ROOT / name
        if path == Path(__file__).resolve():  # this file's own examples of what the scan must catch
            continue
        if path.is_file() and path.suffix not in {".png", ".keras", ".npz", ".gz", ".whl"}:
            yield name, path.read_text(errors="replace")


def test_no_committed_file_holds_an_absolute_path():
    here = {str(ROOT), str(Path.home())}
    found = []
    for name, text in _committed_text_files():
        found += [f"{name}: {m}" for m in ABSOLUTE.findall(text)]
        found += [f"{name}: {p}" for p in here if p in text]
    assert found == []


def test_the_scan_catches_what_it_should():
    assert ABSOLUTE.findall('results_dir = "/home/ann/aae/results"') == ["/home/ann"]
    assert ABSOLUTE.findall(r'"C:\\Users\\ann"') == [r"C:\\Users"]
    assert ABSOLUTE.findall("results_dir = '../results'; /usr/share/datasets; ~/work/x") == []


def test_paths_are_found_from_the_working_directory(tmp_path, monkeypatch):
    copy = tmp_path / "copy"
    (copy / "aae").mkdir(parents=True)
    (copy / "aae" / "__init__.py").write_text("")
    (copy / "notebooks").mkdir()
    assert project_root(copy / "notebooks") == copy and project_root(copy) == copy
    assert project_root(tmp_path) == PROJECT_ROOT  # not in a checkout: this package's own
    for cwd in (copy / "notebooks", copy):  # Jupyter runs in notebooks/, plain papermill anywhere
        monkeypatch.chdir(cwd)
        assert results_folder("../results").resolve() == (copy / "results").resolve()
    monkeypatch.chdir(tmp_path)
    assert results_folder("out").resolve() == (tmp_path / "out").resolve()


@pytest.mark.parametrize("cwd", ["notebooks", "."])
def test_a_copy_of_the_repository_runs_a_notebook_into_its_own_results(tmp_path, mnist_dir, cwd):
    copy = tmp_path / "copy"
    shutil.copytree(ROOT / "aae", copy / "aae", ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "notebooks").mkdir()
    notebook = copy / "notebooks" / "02_autoencoder.ipynb"
    shutil.copy(ROOT / "notebooks" / notebook.name, notebook)
    ours = results_mtimes()
    env = {"AAE_DATA_DIR": str(mnist_dir), "MPLBACKEND": "Agg"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        papermill.execute_notebook(str(notebook), str(tmp_path / "out.ipynb"), cwd=str(copy / cwd),
                                   parameters={"epochs": 1, "train_size": 500, "test_size": 200,
                                               "tsne_points": 100}, progress_bar=False,
                                   kernel_name="python3")
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    assert (copy / "results" / "autoencoder_reconstruction.png").is_file()
    assert (copy / "results" / "metrics" / "autoencoder.json").is_file()
    assert ours == results_mtimes()
