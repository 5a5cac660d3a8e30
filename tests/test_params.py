"""aae.params: one table of what every notebook parameter accepts, used by the notebooks' setup
cells and by the reproduce command. No kernel is started here."""
import ast
import json
from pathlib import Path

import papermill
import pytest

from aae.runner import reproduce
from aae.params import RULES, ParameterError, check_parameters, problems

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _parameters_cell(path):
    """The source of a notebook's `parameters` cell, run into a namespace as Jupyter would."""
    nb = json.loads(path.read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    namespace = {}
    exec("".join(cell["source"]), namespace)
    return namespace


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_parameter_has_a_rule_and_its_values_pass(path):
    names = set(papermill.inspect_notebook(str(path)))
    assert names - set(RULES) == set(), "add a rule to aae.params.RULES for these"
    namespace = _parameters_cell(path)
    check_parameters(namespace)  # the notebook's own values
    quick = {k: v for k, v in reproduce.QUICK.items() if k in names}
    assert problems(quick) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_setup_cell_checks_before_anything_else_runs(path):
    """The first code cell after the parameters imports and then calls check_parameters first."""
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"
            and not {"parameters", "injected-parameters"} & set(c["metadata"].get("tags", []))]
    statements = ast.parse("".join(code[0]["source"])).body
    first = next(s for s in statements if not isinstance(s, (ast.Import, ast.ImportFrom)))
    assert ast.unparse(first) == "parameters = check_parameters(globals())"


@pytest.mark.parametrize("name, value, accepts", [
    ("epochs", -1, "a positive integer"),
    ("epochs", 0, "a positive integer"),
    ("epochs", 2.5, "a positive integer"),
    ("epochs", True, "a positive integer"),
    ("batch_size", "abc", "a positive integer"),
    ("learning_rate", 0, "a number > 0"),
    ("learning_rate", float("nan"), "a number > 0"),
    ("adam_beta_1", 1.0, "a number >= 0 and < 1"),
    ("precision", "float16", "one of 'auto', 'float32', 'mixed_bfloat16'"),
    ("posterior", "normal", "one of 'deterministic', 'gaussian'"),
    ("train_size", 0, "None or a positive integer"),
    ("hidden", [512, -1], "a list, each item a positive integer"),
    ("d_hidden", [], "a non-empty list"),
    ("models", ["vae", 3], "None or a non-empty list, each item a non-empty string"),
    ("confidence_threshold", 1.5, "a number > 0 and <= 1"),
    ("sweep_dims", [0], "a list of 2, each item an integer >= 0"),
    ("tsne_points", 10, "an integer >= 31 (t-SNE's perplexity is 30)"),
    ("variants", [{"name": "x", "latent_dim": 32, "activation": "relu", "penalty": "kl", "p": 2.0,
                   "beta": 3.0, "reduction": "sum"}], "penalty (None; 'l1' with lam > 0"),
])
def test_bad_values_are_named_with_what_they_accept(name, value, accepts):
    [line] = problems({name: value})
    assert line.startswith(f"{name} = {value!r}: {name} takes ") and accepts in line
    with pytest.raises(ParameterError, match="change them in the parameters cell") as info:
        check_parameters({name: value, "np": object()})  # other globals are not parameters
    assert f"{name} = {value!r}" in str(info.value)


def test_good_values_pass():
    assert problems({"epochs": 1, "learning_rate": 1, "train_size": None, "data_dir": None,
                     "models": "vae,aae_gaussian", "jit_compile": "auto", "hidden": [],
                     "seed": 0, "swiss_roll_noise": 0.0, "precision": "float32"}) == []


def test_the_parameters_are_what_the_parameters_cells_assign():
    """In a kernel, IPython's input history `In` says which names the parameters cell (and
    papermill's injected cell after it) assigned: those, and only those, are the parameters."""
    history = ["", "# Parameters: change a value here\nseed = 1\nepochs = 3\nhidden = [8]  # widths",
               "# Parameters\nepochs = 5\n", "import numpy as np\nx = 3\n"]
    namespace = {"In": history, "seed": 1, "epochs": 5, "hidden": [8], "x": 3, "np": object(),
                 "Out": {}, "_i1": "..."}
    assert check_parameters(namespace) == {"seed": 1, "epochs": 5, "hidden": [8]}
    # a parameters cell run again by hand, later, starts the list anew
    history += ["# Parameters: again\nseed = 2\n"]
    assert check_parameters({**namespace, "seed": 2}) == {"seed": 2}
    # outside IPython: plain values that are not private
    assert check_parameters({"seed": 0, "_x": 1, "f": print, "Out": {}}) == {"seed": 0}


def test_without_a_rule_the_default_gives_the_kind():
    defaults = {"x": 1, "rate": 0.5, "name": "a", "xs": [1], "flag": False, "maybe": None}
    assert problems({"x": 3, "rate": 2, "name": "b", "xs": [], "flag": True, "maybe": "anything"},
                    defaults) == []
    assert problems({"x": [1, 2]}, defaults) == ["x = [1, 2]: x takes an integer, like its default 1"]
    assert problems({"rate": "fast"}, defaults)[0].startswith("rate = 'fast': rate takes a number")
    assert problems({"flag": 1}, defaults)[0].startswith("flag = 1: flag takes one of True, False")
    assert problems({"unknown": object()}) == []  # no rule, no default: nothing to check against


def test_a_notebook_stops_in_its_setup_cell_on_a_value_edited_by_hand(tmp_path, mnist_dir):
    """As if the parameters cell said epochs = -1: the setup cell names it, before any data or model."""
    from papermill.exceptions import PapermillExecutionError

    path = ROOT / "notebooks" / "02_autoencoder.ipynb"
    with pytest.raises(PapermillExecutionError) as info:
        papermill.execute_notebook(str(path), str(tmp_path / "out.ipynb"), cwd=str(path.parent),
                                   parameters={"epochs": -1, "results_dir": str(tmp_path)},
                                   progress_bar=False, kernel_name="python3")
    assert info.value.ename == "ParameterError"
    assert "epochs = -1: epochs takes a positive integer" in info.value.evalue
    assert "check_parameters(globals())" in info.value.source  # the setup cell, the first after the parameters
    assert info.value.exec_count == 3  # parameters, injected parameters, setup
    assert not list(tmp_path.glob("*.png"))
