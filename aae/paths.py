"""Where the project's folders are: the project root is defined here and nowhere else.

Notebooks default to `results_dir = "../results"`, a path relative to the notebook's own folder
(Jupyter's working directory), so a copy of the repository writes into its own `results/`.
`results_folder` resolves that default from wherever a notebook or script runs.
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["PROJECT_ROOT", "NOTEBOOKS", "RESULTS", "QUICK_RESULTS", "DATA", "project_root",
           "results_folder"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = PROJECT_ROOT / "notebooks"
RESULTS = PROJECT_ROOT / "results"
QUICK_RESULTS = PROJECT_ROOT / "results-quick"
DATA = PROJECT_ROOT / "data"


def _is_root(folder: Path) -> bool:
    return (folder / "aae" / "__init__.py").is_file() and (folder / "notebooks").is_dir()


def project_root(start=None) -> Path:
    """The checkout holding `start` (default: the working directory), else this package's own.

    A notebook opened in another copy of the repository runs in that copy's `notebooks/`, so
    its results belong in that copy, even if `aae` was imported from elsewhere.
    """
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if _is_root(folder):
            return folder
    return PROJECT_ROOT


def results_folder(results_dir="../results") -> Path:
    """The folder a notebook writes to, created if needed.

    The default "../results" means the project's `results/` wherever the notebook runs from (its
    own folder in Jupyter, the repository root under plain papermill), and "../results-quick"
    (the quick setting's) the project's `results-quick/`; any other relative path
    is relative to the working directory, an absolute one is used as it is.
    """
    if results_dir in (None, "../results", "../results-quick") and not (Path.cwd().parent / "aae").is_dir():
        folder = project_root() / Path(results_dir or "../results").name
    else:
        folder = Path(results_dir if results_dir is not None else "../results").expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    return folder
