"""What each notebook parameter accepts, checked before anything trains.

Every notebook's setup cell calls `check_parameters(globals())`, and `python -m aae reproduce`
checks its `-p` values against the same table before it starts a kernel. A bad value then stops
at once with a message naming it and what it accepts, instead of as a `KeyError: 'loss'` after
zero epochs or a TypeError deep inside Keras. Imports nothing heavy (no Keras): the runner uses
it in its own process.
"""
from __future__ import annotations

import ast
import math
import numbers

__all__ = ["ParameterError", "Rule", "RULES", "PRECISIONS", "BACKENDS", "DATASETS", "QUICK",
           "check_parameters", "problems"]

# Choices that Keras-importing modules share with the runner, which must not import Keras:
# aae.runtime.set_precision's precisions, and each Keras backend with the requirements file that
# installs it (the README's install lines).
PRECISIONS = ("auto", "float32", "mixed_bfloat16")
BACKENDS = {"tensorflow": "requirements.txt", "jax": "requirements-jax.txt",
            "torch": "requirements-torch.txt"}
DATASETS = ("mnist", "fashion_mnist")  # aae.data.load_dataset's names; the first is the default

# The quick setting: small values that run a notebook top to bottom in about a minute on a CPU.
# `quick = True` in a notebook's parameters cell applies the ones it has (check_parameters), and
# `python -m aae reproduce --quick` injects the same ones into every notebook.
QUICK = {
    "epochs": 2,
    "train_size": 2000,
    "test_size": 1000,
    "iwae_samples": 20,
    "tsne_points": 500,
    "sparse_epochs": 1,
    "epochs_2d": 1,
    "epochs_2d_gaussian": 1,
    "epochs_2d_supervised": 1,
    "epochs_8d": 2,
    "parzen_samples": 1000,
    "parzen_val_size": 500,
    "grid_n": 40,
    "classifier_epochs": 1,
    "seeds": [0],
    "seeds_others": [0],
    "n_labels_list": [100],
    "cluster_counts": [16],
    "content_styles": 200,
    "occupancy_seeds": [2],  # one more seed per 2-D model: notebook 05's "over seeds" still has two
    "jit_compile": "auto",   # TensorFlow: no XLA (compiling cost more than it saved on 2,000 images); JAX compiles
}


class ParameterError(ValueError):
    """A parameter has a value its notebook cannot use."""


class Rule:
    """What one parameter accepts: `accepts` is the text shown in messages, `test(value)` says yes or no."""

    def __init__(self, accepts, test):
        self.accepts, self.test = accepts, test

    def __call__(self, value):
        try:
            return bool(self.test(value))
        except (TypeError, ValueError, KeyError, AttributeError):  # a value of the wrong shape is a no
            return False

    def __repr__(self):
        return f"Rule({self.accepts!r})"


def _is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_number(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def integer(low=1, high=None, why=""):
    """An int (not a bool) in [low, high]."""
    text = ("a positive integer" if low == 1 else f"an integer >= {low}") if high is None \
        else f"an integer from {low} to {high}"
    return Rule(text + (f" ({why})" if why else ""),
                lambda v: _is_int(v) and v >= low and (high is None or v <= high))


def number(above=None, at_least=None, below=None, at_most=None):
    """A finite int or float within the given bounds (`above`/`below` exclude the bound)."""
    bounds = [(above, ">"), (at_least, ">="), (below, "<"), (at_most, "<=")]
    text = "a number " + " and ".join(f"{op} {b:g}" for b, op in bounds if b is not None)

    def test(v):
        return (_is_number(v) and (above is None or v > above) and (at_least is None or v >= at_least)
                and (below is None or v < below) and (at_most is None or v <= at_most))
    return Rule(text.strip(), test)


def one_of(*choices):
    return Rule("one of " + ", ".join(repr(c) for c in choices),
                lambda v: any(v == c and type(v) is type(c) for c in choices))


def optional(rule):
    return Rule(f"None or {rule.accepts}", lambda v: v is None or rule(v))


def text(what="text"):
    return Rule(f"a non-empty string ({what})", lambda v: isinstance(v, str) and v.strip() != "")


def list_of(rule, empty=False, length=None):
    """A list (or tuple) of items that pass `rule`; non-empty unless `empty`, of `length` if given."""
    size = f"a list of {length}" if length else ("a list" if empty else "a non-empty list")
    return Rule(f"{size}, each item {rule.accepts}",
                lambda v: isinstance(v, (list, tuple)) and (empty or len(v) > 0)
                and (length is None or len(v) == length) and all(rule(x) for x in v))


def any_of(*rules):
    return Rule(" or ".join(r.accepts for r in rules), lambda v: any(r(v) for r in rules))


def _variant(v):
    """One entry of notebook 03's `variants`."""
    if not (isinstance(v, dict) and isinstance(v.get("name"), str) and _is_int(v.get("latent_dim"))
            and v["latent_dim"] >= 1 and isinstance(v.get("activation"), str)):
        return False
    if not (v.get("weight_decay", 0.0) == 0.0 or NON_NEGATIVE(v["weight_decay"])):
        return False
    penalty = v.get("penalty")
    if penalty is None:
        return True
    if penalty == "l1":
        return POSITIVE(v["lam"])
    if penalty == "kl":
        return ("p" not in v or FRACTION(v["p"])) and POSITIVE(v["beta"]) and v["reduction"] in ("sum", "mean")
    return False


POSITIVE_INT = integer(1)
POSITIVE = number(above=0)
NON_NEGATIVE = number(at_least=0)
FRACTION = number(above=0, below=1)
PROBABILITY_THRESHOLD = number(above=0, at_most=1)
SIZE = optional(integer(1, why="a number of images"))

# One rule per parameter name, shared by every notebook that has the parameter (the names are
# fixed across notebooks, STYLE.md). tests/test_params.py checks that every parameter of every
# notebook has a rule here and that each notebook's own values pass it.
RULES = {
    "seed": integer(0, 2**32 - 1, why="NumPy's seed range"),
    "quick": one_of(True, False),
    "results_dir": text("a folder"),
    "data_dir": optional(text("the folder holding the dataset's files")),
    "dataset": one_of(*DATASETS),
    "latent_dim": POSITIVE_INT,
    "latent_dim_8d": POSITIVE_INT,
    "epochs": POSITIVE_INT,
    "epochs_2d": POSITIVE_INT,
    "epochs_2d_gaussian": POSITIVE_INT,
    "epochs_2d_supervised": POSITIVE_INT,
    "epochs_8d": POSITIVE_INT,
    "classifier_epochs": POSITIVE_INT,
    "batch_size": POSITIVE_INT,
    "steps_per_execution": POSITIVE_INT,
    "learning_rate": POSITIVE,
    "learning_rate_2d": POSITIVE,
    "learning_rate_2d_gaussian": POSITIVE,
    "learning_rate_2d_supervised": POSITIVE,
    # the supervised mixture's (reconstruction, discriminator, generator) rates; None: notebook 04's shared ones
    "rates_2d_supervised": optional(list_of(POSITIVE, length=3)),
    "learning_rate_8d": POSITIVE,
    "d_learning_rate": POSITIVE,
    "g_learning_rate": POSITIVE,
    "adam_beta_1": number(at_least=0, below=1),
    "precision": one_of(*PRECISIONS),
    "jit_compile": one_of(True, False, "auto"),
    "lr_decay": one_of(True, False),
    "train_size": SIZE,
    "test_size": SIZE,
    "parzen_val_size": integer(1, 59_999, why="held out of MNIST's 60,000 training images"),
    "iwae_samples": POSITIVE_INT,
    "iwae_test_size": POSITIVE_INT,
    "knn_neighbors": POSITIVE_INT,
    "tsne_points": integer(31, why="t-SNE's perplexity is 30"),
    "target_p": FRACTION,
    "near_zero": FRACTION,
    "variants": list_of(Rule(
        "a dict with name (text), latent_dim (a positive integer), activation (a Keras activation name), "
        "penalty (None; 'l1' with lam > 0; or 'kl' with beta > 0, reduction 'sum' or 'mean' and "
        "optionally 0 < p < 1, else target_p) and optionally weight_decay >= 0", _variant)),
    "hidden": list_of(POSITIVE_INT, empty=True),  # [] : no hidden layer
    "dense_vae_hidden": list_of(POSITIVE_INT, empty=True),
    "dense_ae_hidden": list_of(POSITIVE_INT, empty=True),
    "d_hidden": list_of(POSITIVE_INT),
    "hidden_8d": list_of(POSITIVE_INT),
    "hidden_2d_supervised": optional(list_of(POSITIVE_INT, empty=True)),
    "dropout_2d_supervised": number(at_least=0, below=1),
    "encoder_batch_norm_2d": one_of(True, False),
    "code_batch_norm_2d": one_of(True, False),
    "dropout_8d": number(at_least=0, below=1),
    "prior_scale_8d": POSITIVE,
    "posterior": one_of("deterministic", "gaussian"),
    "mixture_radius": POSITIVE,
    "mixture_std": POSITIVE,
    "swiss_roll_radius": POSITIVE,
    "swiss_roll_turns": POSITIVE,
    "swiss_roll_noise": NON_NEGATIVE,
    "swiss_roll_supervised": one_of(True, False),
    "parzen_samples": POSITIVE_INT,
    "parzen_sigmas": list_of(POSITIVE),
    "prior_points": POSITIVE_INT,
    "n_sweep": POSITIVE_INT,
    "n_show": POSITIVE_INT,
    # None: every saved 2-D model; papermill's command line passes lists as text: "vae,aae_gaussian"
    "seed_models_dir": optional(text("a folder inside results_dir")),
    "models": optional(any_of(list_of(text("a saved model's name")),
                              text("model names separated by commas"))),
    "eval_batch_size": POSITIVE_INT,
    "sweep_dims": list_of(integer(0), length=2),
    "baseline": text("a variant's name"),
    "histogram_bins": POSITIVE_INT,
    "classifier_filters": list_of(POSITIVE_INT),
    "classifier_units": POSITIVE_INT,
    "classifier_learning_rate": POSITIVE,
    "sparsity_beta": POSITIVE,
    "sparsity_reduction": one_of("sum", "mean"),
    "nonneg_alpha": NON_NEGATIVE,
    "n_fields": POSITIVE_INT,
    "probe_iterations": POSITIVE_INT,
    "ae_latent_dim": POSITIVE_INT,
    "filters": list_of(POSITIVE_INT),
    "setting": one_of("default", "long"),
    "n_labels_list": list_of(Rule("a multiple of 10 from 10 to 50,000 (balanced labelled images)",
                                  lambda v: _is_int(v) and 10 <= v <= 50_000 and v % 10 == 0)),
    "seeds": list_of(integer(0, 2**32 - 1, why="NumPy's seed range")),
    "seeds_others": list_of(integer(0, 2**32 - 1, why="NumPy's seed range")),
    "cluster_counts": list_of(integer(2, why="clusters")),
    "val_size": integer(1, 59_999, why="held out of the 60,000 training images"),
    "input_noise": NON_NEGATIVE,
    "batch_norm": one_of(True, False),
    "joint_style": one_of(True, False),
    "cluster_joint_style": one_of(True, False),
    "cluster_d_learning_rate": POSITIVE,
    "cluster_g_learning_rate": POSITIVE,
    "content_styles": integer(1, 10_000, why="test images"),
    "cluster_examples": POSITIVE_INT,
    "occupancy_seeds": list_of(integer(0, 2**32 - 1, why="NumPy's seed range"), empty=True),
    "s_learning_rate": POSITIVE,
    "grid_n": POSITIVE_INT,
    "grid_lim": POSITIVE,
    "confidence_threshold": PROBABILITY_THRESHOLD,
    "threshold_sweep": list_of(PROBABILITY_THRESHOLD),
    "prior_samples": POSITIVE_INT,
    "overlay_points": POSITIVE_INT,
}

_NO_DEFAULT = object()


def _kind(default):
    """A rule accepting values of the same kind as `default` (for a parameter with no rule)."""
    if isinstance(default, bool):
        return one_of(True, False)
    if _is_int(default):
        return Rule("an integer", _is_int)
    if isinstance(default, numbers.Real):
        return Rule("a number", _is_number)
    if isinstance(default, str):
        return Rule("a string", lambda v: isinstance(v, str))
    if isinstance(default, (list, tuple)):
        return Rule("a list", lambda v: isinstance(v, (list, tuple)))
    if isinstance(default, dict):
        return Rule("a dict", lambda v: isinstance(v, dict))
    return None  # None or an expression: anything goes


def problems(values, defaults=None):
    """One line per entry of `values` ({name: value}) that its rule rejects; [] if all pass.

    A name without a rule in RULES is checked against the kind of its entry in `defaults`
    ({name: default value}), if it has one: an int default takes ints, a float one numbers, a
    string one strings, a list one lists, a bool one True or False; a None default takes anything.
    """
    defaults = defaults or {}
    out = []
    for name, value in values.items():
        default = defaults.get(name, _NO_DEFAULT)
        if name in RULES:
            rule, shown = RULES[name], ""
        elif default is not _NO_DEFAULT and _kind(default) is not None:
            rule, shown = _kind(default), f", like its default {default!r}"
        else:
            continue
        if not rule(value):
            out.append(f"{name} = {value!r}: {name} takes {rule.accepts}{shown}")
    return out


PARAMETERS_HEADER = "# Parameters"  # the first line of every parameters cell (and papermill's injected one)


def _parameter_names(history):
    """Names assigned in the last parameters cell run in this kernel and in the cells of
    parameters injected after it, from IPython's input history `In`; None without one."""
    if not isinstance(history, list):
        return None
    starts = [i for i, src in enumerate(history) if isinstance(src, str)
              and src.lstrip().startswith(PARAMETERS_HEADER + ":")]
    if not starts:
        return None
    names = set()
    for src in history[starts[-1]:]:
        if not (isinstance(src, str) and src.lstrip().startswith(PARAMETERS_HEADER)):
            continue
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else \
                [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else []
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


# What IPython puts in a kernel's globals before any cell runs.
_KERNEL_NAMES = {"In", "Out", "exit", "quit", "get_ipython", "open"}
_VALUE_TYPES = (bool, int, float, str, list, tuple, dict, type(None))


def check_parameters(namespace):
    """The notebook's parameters, {name: value}, checked: call it first thing in the setup cell,
    `parameters = check_parameters(globals())`, when only the parameters cell has run.

    Raises ParameterError naming every parameter whose value its rule in RULES rejects. The
    returned dict is what the notebook records in its metrics file: one place, no second list.
    With `quick = True` among them, the values of QUICK that the notebook has replace its own,
    in `namespace` too, so the cells below run the quick setting; the default results_dir
    "../results" becomes "../results-quick", so the full run's results stay as they are.
    """
    names = _parameter_names(namespace.get("In"))
    params = {k: v for k, v in namespace.items()
              if (k in names if names is not None else
                  not k.startswith("_") and k not in _KERNEL_NAMES and isinstance(v, _VALUE_TYPES))}
    found = problems({k: params[k] for k in RULES if k in params})
    if found:
        raise ParameterError(
            "this notebook cannot use these parameter values; change them in the parameters cell "
            "(or in the -p values given to the reproduce command) and run the notebook again:\n  "
            + "\n  ".join(found))
    if params.get("quick") is True:
        quick = {k: v for k, v in QUICK.items() if k in params}
        if params.get("results_dir") == "../results":
            # a quick run never replaces the full run's figures and numbers in results/
            quick["results_dir"] = "../results-quick"
        namespace.update(quick)
        params.update(quick)
        print("quick setting: " + ", ".join(f"{k} = {v!r}" for k, v in quick.items()))
    return params
