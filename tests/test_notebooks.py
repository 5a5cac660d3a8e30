"""The committed notebooks as GitHub shows them: every figure cell stores its image, no stored output
holds a memory address, a warning or a path, every notebook has the quick setting, and the
reproduce command starts kernels that store figures whatever the caller's MPLBACKEND says."""
import ast
import re
from pathlib import Path

import nbformat
import papermill
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from aae.params import QUICK, check_parameters
from aae.runner import reproduce

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# What a stored output must not hold: a memory address, a warning, this or any machine's path.
NOISE = re.compile(r"0x[0-9a-f]{8,}|Warning:|WARNING|retracing|(?<![\w.~])/(?:home|Users|root|work|tmp|mnt)/")


def _calls(tree):
    """Names of the functions called in `tree`, outside the functions it defines."""
    found, todo = set(), [tree]
    while todo:
        node = todo.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, ast.Call) and isinstance(child.func, ast.Name):
                found.add(child.func.id)
            todo.append(child)
    return found


def figure_cells(nb):
    """Indices of the code cells that save a figure: they call `save_figure`, or a function defined
    in the notebook that does (a cell that only defines such a function saves nothing)."""
    trees = {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            try:
                trees[i] = ast.parse(cell.source)
            except SyntaxError:  # IPython magics: no figure cell of ours has one
                continue
    savers = {"save_figure"}
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and any(
                    isinstance(c, ast.Call) and getattr(c.func, "id", None) in savers for c in ast.walk(node)):
                savers.add(node.name)
    return [i for i, tree in trees.items() if _calls(tree) & savers]


def figure_cells_without_image(nb):
    """Indices of the code cells that save a figure (figure_cells) but store no `image/png` output."""
    return [i for i in figure_cells(nb)
            if not any("image/png" in out.get("data", {}) for out in nb.cells[i].get("outputs", []))]


def noisy_outputs(nb, allowed=None):
    """(cell index, the offending text) for every stored output that `NOISE` matches; `allowed`, a
    folder the run was told to write to, is left out first (a run outside the project prints it)."""
    found = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            texts = [out.get("text", "")] + [v for k, v in out.get("data", {}).items()
                                             if k.startswith("text/") and isinstance(v, str)]
            texts = [t.replace(allowed, "<out>") if allowed else t for t in texts]
            found += [(i, m.group(0)) for text in texts for m in NOISE.finditer(text)]
    return found


def test_the_project_has_its_notebooks():
    assert len(NOTEBOOKS) == 8


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_figure_cell_of_a_committed_notebook_shows_its_figure(path):
    nb = nbformat.read(path, as_version=4)
    assert figure_cells(nb), path.name
    assert figure_cells_without_image(nb) == [], f"{path.name}: figure cells with no stored image"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_stored_output_holds_an_address_a_warning_or_a_path(path):
    assert noisy_outputs(nbformat.read(path, as_version=4)) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_has_the_quick_setting_off_by_default(path):
    params = papermill.inspect_notebook(str(path))
    assert params["quick"]["default"] == "False", path.name
    assert set(QUICK) & set(params), f"{path.name} has none of the quick values' parameters"


def test_the_quick_setting_applies_the_runners_quick_values():
    namespace = {"quick": True, "epochs": 50, "train_size": None, "seed": 3, "latent_dim": 2}
    params = check_parameters(namespace)
    assert namespace["epochs"] == params["epochs"] == QUICK["epochs"]
    assert namespace["train_size"] == params["train_size"] == QUICK["train_size"]
    assert namespace["seed"] == 3 and namespace["latent_dim"] == 2  # not in QUICK: untouched
    assert "iwae_samples" not in namespace  # only the notebook's own parameters
    assert reproduce.QUICK is QUICK  # `reproduce --quick` injects the same table
    assert "results_dir" not in namespace  # none given: none set
    mine = {"quick": True, "results_dir": "../results"}
    assert check_parameters(mine)["results_dir"] == mine["results_dir"] == "../results-quick"
    elsewhere = {"quick": True, "results_dir": "my-results"}
    assert check_parameters(elsewhere)["results_dir"] == "my-results"  # a folder the user chose stays
    off = {"quick": False, "epochs": 50}
    assert check_parameters(off)["epochs"] == 50 and off["epochs"] == 50


def test_kernels_store_figures_even_when_the_caller_sets_a_non_inline_backend(tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")  # what CI and many shells set
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = new_code_cell("results_dir = '.'")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, new_code_cell(
        "import matplotlib.pyplot as plt\nfrom aae.plotting import save_figure\n"
        "fig, ax = plt.subplots()\nax.plot([0, 1])\nsave_figure(fig, 'line', results_dir);")]
    nbformat.write(nb, nbs / "01_one.ipynb")
    reproduce.run(notebooks_dir=nbs, output_dir=tmp_path / "out", progress=False)
    executed = nbformat.read(tmp_path / "out" / "notebooks" / "01_one.ipynb", as_version=4)
    assert figure_cells_without_image(executed) == []
    images = [o for o in executed.cells[-1].outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1  # shown once
    assert (tmp_path / "out" / "line.png").is_file()


def test_the_checks_catch_what_they_should():
    nb = new_notebook()
    nb.cells = [new_code_cell("save_figure(fig, 'x', results_dir);"), new_code_cell("print(1)"),
                new_code_cell("def show(z):\n    save_figure(plot(z), 'z', results_dir)"),
                new_code_cell("for z in codes:\n    show(z)")]
    assert figure_cells_without_image(nb) == [0, 3]  # the cell that only defines show() saves nothing
    nb.cells[3].outputs = [nbformat.v4.new_output("display_data", data={"image/png": "iVBOR"})]
    nb.cells[0].outputs = [nbformat.v4.new_output("display_data", data={"image/png": "iVBOR"})]
    assert figure_cells_without_image(nb) == []
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stderr", text=(
        "WARNING:tensorflow:5 out of the last 5 calls to <function f at 0x7f3a2b1c4d30> triggered "
        "retracing\nsaved in " + "/" + "tmp/abc/x.png\n"))]
    assert {m for _, m in noisy_outputs(nb)} == {"WARNING", "0x7f3a2b1c4d30", "retracing", "/tmp/"}
