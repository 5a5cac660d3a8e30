"""`python -m aae reproduce`: execute every notebook top to bottom with papermill.

Full runs write figures and metrics into results/ and the executed notebooks back into
notebooks/; a run into any other folder (`--quick`, `--output-dir`) writes its executed notebooks
there and leaves notebooks/ as it was. `--from NAME` restarts a run at a notebook. `--backend`
picks the Keras backend the notebooks' kernels run on (else $KERAS_BACKEND, else TensorFlow);
every notebook records the backend and device in its metrics JSON.

Every `-p` value is checked (aae.params) before a kernel starts. Ctrl-C (SIGINT) or SIGTERM stops
a run within seconds: the running kernel is interrupted, and killed if it has not stopped after
GRACE_SECONDS; the files that notebook had written are put back as they were, its temporary
notebook is removed, and the command exits 130 (SIGINT) or 143 (SIGTERM).
"""
from __future__ import annotations

import argparse
import ast
import importlib.util
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from ..files import make_readable
from ..params import BACKENDS, DATASETS, QUICK, problems
from ..paths import NOTEBOOKS, PROJECT_ROOT, QUICK_RESULTS, RESULTS
from .runlog import Clock, LiveLog, clean_metadata, drop_tf_log, first_line, hms
from .stopping import Backup, Halt, ReproduceError, Stopped, StopOnSignals, quiet_papermill
from .summary import (TIMINGS, block_page, datasets_table, fmt, headline, metrics_state, notebooks_table,
                      paper_table, read_timings, record_timing, summary_rows, update_readme_block,
                      write_summary)




def short_name(path: Path) -> str:
    """`01_variational_autoencoder.ipynb` -> `variational_autoencoder`."""
    stem = path.stem
    head, _, rest = stem.partition("_")
    return rest if head.isdigit() and rest else stem


def discover(notebooks_dir=NOTEBOOKS):
    """Notebooks in run order (file name order), as {short name: path}."""
    paths = sorted(Path(notebooks_dir).glob("*.ipynb"))
    if not paths:
        raise ReproduceError(f"no notebooks (*.ipynb) found in {notebooks_dir}")
    return {short_name(p): p for p in paths}


def notebook_parameters(path):
    """A notebook's parameters, {name: default value}, from its `parameters` cell; a default
    that is not a Python literal (an expression) is left out of the values, not the names."""
    import papermill

    out = {}
    for name, info in papermill.inspect_notebook(str(path)).items():
        try:
            out[name] = ast.literal_eval(info["default"])
        except (ValueError, SyntaxError, TypeError):
            out[name] = _Expression(info["default"])
    return out


class _Expression(str):
    """A parameter default that is not a literal: its source text, with no kind to check against."""


def _defaults(params):
    return {k: v for k, v in params.items() if not isinstance(v, _Expression)}


def parse_overrides(pairs):
    """['epochs=5', 'results_dir=out'] -> {'epochs': 5, 'results_dir': 'out'} (Python literals)."""
    out = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key.isidentifier():
            raise ReproduceError(f"-p expects key=value (e.g. -p epochs=5), got {pair!r}")
        try:
            out[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            out[key] = raw  # a bare string such as a path
    return out


def starting_at(available, name):
    """The notebooks from `name` on, in run order (`--from`)."""
    names = list(available)
    found = [n for n, p in available.items() if name in (n, p.stem)]
    if not found:
        raise ReproduceError(f"--from: unknown notebook name {name!r}; valid names: {', '.join(names)}")
    return {n: available[n] for n in names[names.index(found[0]):]}


def select(available, only):
    if not only:
        return dict(available)
    unknown = [n for n in only if n not in available and not any(p.stem == n for p in available.values())]
    if unknown:
        raise ReproduceError(f"unknown notebook name(s) {unknown}; valid names: {', '.join(available)}")
    return {n: p for n, p in available.items() if n in only or p.stem in only}


def use_backend(backend):
    """Make the notebooks' kernels use Keras backend `backend` (None: leave $KERAS_BACKEND)."""
    if backend is None:
        return os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend not in BACKENDS:
        raise ReproduceError(f"backend must be one of {tuple(BACKENDS)}, got {backend!r}.")
    if importlib.util.find_spec(backend) is None:
        raise ReproduceError(f"the {backend} backend is not installed in this Python ({backend} cannot "
                             f"be imported); install it with `pip install -r {BACKENDS[backend]}`.")
    os.environ["KERAS_BACKEND"] = backend
    return backend


def _say(text):
    print(text, flush=True)  # flushed: the log is read live, often through a pipe


def _check_values(plans, params_of):
    """Raise ReproduceError listing every value (from -p or --quick) a notebook cannot use."""
    found = {}
    for name, params in plans.items():
        values = {k: v for k, v in params.items() if k != "results_dir"}  # set by the runner
        for line in problems(values, _defaults(params_of[name])):
            found.setdefault(line, []).append(name)
    if found:
        raise ReproduceError(
            "parameter values the notebooks cannot use; nothing was run:\n  "
            + "\n  ".join(f"{line} (in {', '.join(names)})" for line, names in found.items())
            + "\n-p takes Python literals, e.g. -p epochs=5 -p precision=float32 -p hidden=[256,256]")


def _plan(path, params, quick, overrides, results_dir):
    """The values to inject into one notebook: only those that differ from its own defaults, so
    a full run into results/ injects nothing and the committed notebook stays as written."""
    plan = {k: v for k, v in QUICK.items() if quick and k in params}
    plan.update({k: v for k, v in overrides.items() if k in params})
    if "results_dir" in params:
        # Kernels run in the notebook's folder: a folder inside the project is given relative to
        # it, so no executed notebook carries this machine's path; others are absolute.
        inside = results_dir == PROJECT_ROOT or PROJECT_ROOT in results_dir.parents
        plan["results_dir"] = os.path.relpath(results_dir, path.parent) if inside else str(results_dir)
    return {k: v for k, v in plan.items()
            if not (k in params and type(params[k]) is type(v) and params[k] == v)}


def _estimates(results_dir, quick):
    """Per-notebook seconds of the last run into this folder, else of the last run of this kind."""
    return read_timings(results_dir) or read_timings(QUICK_RESULTS if quick else RESULTS)


def run(only=None, quick=False, overrides=None, notebooks_dir=NOTEBOOKS, output_dir=None,
        progress=True, log=_say, backend=None, start=None, dataset=None):
    """Execute the selected notebooks in order; return [(name, seconds, headline)].

    `only` runs just those notebooks; `start` runs every notebook from that one on, keeping the
    results of the ones before it (they must have finished in that folder before). Raises
    ReproduceError naming the notebook and cell when one fails, and Stopped when SIGINT or
    SIGTERM stops the run; notebooks that finished before keep their outputs either way.
    `backend` sets KERAS_BACKEND for the kernels. `dataset` (aae.params.DATASETS) sets every
    notebook's `dataset`; a dataset other than MNIST writes into a folder of its own by default
    (`results/<dataset>/`, `results-quick/<dataset>/`).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before any kernel (or this process) imports TensorFlow
    backend = use_backend(backend)

    available = discover(notebooks_dir)
    if only and start:
        raise ReproduceError("use --only or --from, not both")
    notebooks = starting_at(available, start) if start else select(available, only)
    overrides = dict(overrides or {})
    if dataset is not None:
        if dataset not in DATASETS:
            raise ReproduceError(f"dataset must be one of {DATASETS}, got {dataset!r}")
        overrides["dataset"] = dataset
    dataset = overrides.get("dataset", DATASETS[0])
    params_of = {n: notebook_parameters(p) for n, p in notebooks.items()}
    known = set().union(*params_of.values())
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ReproduceError(f"unknown parameter(s) {unknown}; the selected notebooks take: "
                             f"{', '.join(sorted(known))}")
    if output_dir is None:
        output_dir = QUICK_RESULTS if quick else RESULTS
        if dataset != DATASETS[0]:
            output_dir = output_dir / dataset
    results_dir = Path(output_dir).resolve()
    # Only a full run into results/ rewrites the notebooks themselves (with their outputs).
    write_back = not quick and results_dir == RESULTS.resolve()
    plans = {name: _plan(path, params_of[name], quick, overrides, results_dir)
             for name, path in notebooks.items()}
    _check_values(plans, params_of)
    earlier = list(available)[:list(available).index(next(iter(notebooks)))] if start else []
    missing = [n for n in earlier if n not in read_timings(results_dir)]
    if missing:
        raise ReproduceError(
            f"--from {start} keeps the results of the notebooks before it, but {results_dir} has none "
            f"of {', '.join(missing)} (no entry in its {TIMINGS}); run them first: the same command "
            f"without --from")
    if os.environ.get("AAE_DATA_DIR"):  # kernels run in notebooks/: make a relative path absolute
        os.environ["AAE_DATA_DIR"] = str(Path(os.environ["AAE_DATA_DIR"]).expanduser().resolve())
    results_dir.mkdir(parents=True, exist_ok=True)
    clock = Clock(list(notebooks), _estimates(results_dir, quick))
    rows = []
    with StopOnSignals() as stop:
        for i, (name, path) in enumerate(notebooks.items(), 1):
            if stop.signum:
                raise stop.stopped(f"before notebook {name} started", rows, name, only)
            clock.begin(name)
            shown = ", ".join(f"{k}={v!r}" for k, v in plans[name].items() if k != "results_dir")
            log(f"[{i}/{len(notebooks)}] {name} ({path.name}) on {backend}"
                f"{' with ' + shown if shown else ''}{clock.expected()}")
            before = metrics_state(results_dir)
            seconds = _execute(name, path, plans[name], results_dir, write_back, stop, clock,
                               log if progress else None, rows, only)
            after = metrics_state(results_dir)
            record_timing(results_dir, name, seconds, [f for f in after if after[f] != before.get(f)])
            rows.append((name, seconds, headline(results_dir, name)))
            log(f"    done in {seconds:.0f} s ({clock.status(done=True)})")
        if stop.signum:
            raise stop.stopped("after the last notebook, before the summary", rows, None, only)
    if not only:
        timings = read_timings(results_dir)
        summary = write_summary(results_dir, [(n, timings[n], headline(results_dir, n)) for n in earlier]
                                + rows, quick)
        log(summary)
        if write_back:
            update_readme_block(summary.split("\n", 4)[4])
            update_readme_block(notebooks_table(RESULTS), name="notebooks")
        if not quick and results_dir in [RESULTS.resolve()] + [(RESULTS / d).resolve() for d in DATASETS[1:]]:
            update_readme_block(datasets_table(RESULTS), name="datasets")
        if write_back:
            update_readme_block(paper_table(RESULTS), name="aae-paper")
    else:
        for name, seconds, numbers in rows:
            log(f"{name}: {seconds:.0f} s; " + "; ".join(f"{k} = {fmt(v)}" for k, v in numbers.items()))
    return rows


def _execute(name, path, params, results_dir, write_back, stop, clock, log, finished, only):
    """Run one notebook into a temporary file and move it into place; returns its seconds.

    On a failure the executed copy goes to `<results>/failed/`; on a stop (SIGINT, SIGTERM) the
    files the notebook wrote are put back as they were and the temporary copy is removed.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    # Execute into a temporary file; only a finished run replaces the notebook.
    fd, tmp = tempfile.mkstemp(suffix=".ipynb", prefix=f".{path.stem}-", dir=results_dir)
    os.close(fd)
    backup = Backup(results_dir)
    kernel_output = tempfile.TemporaryFile()  # the kernel process's own output (see kernel_manager_class)
    live = LiveLog(lambda text: log(f"{clock.prefix()} {text}")) if log else None
    current = {"index": None, "source": ""}  # the cell running now, for the message after a stop

    def on_cell_start(cell, cell_index):
        if stop.signum:  # the kernel ignores an interrupt between cells: start no other cell
            raise Halt
        if cell.cell_type == "code" and cell.source.strip():
            current.update(index=cell_index, source=cell.source)
            if live and not {"parameters", "injected-parameters"} & set(cell.metadata.get("tags", [])):
                live.flush()
                log(f"{clock.prefix()} cell {cell_index}: {first_line(cell.source)}  ({clock.status()})")

    t0 = time.perf_counter()
    try:
        with quiet_papermill(stop):
            papermill.execute_notebook(
                str(path), tmp, parameters=params, cwd=str(path.parent), progress_bar=False,
                log_output=False, stdout_file=live and live.stdout, stderr_file=live and live.stderr,
                kernel_name="python3", kernel_manager_class=stop.kernel_manager_class(kernel_output),
                on_cell_start=on_cell_start)
    except BaseException as exc:
        stop.kernel_done()
        if stop.signum:
            Path(tmp).unlink(missing_ok=True)
            restored = backup.restore()
            files = (f"the {len(restored)} file(s) it had written in {results_dir} are put back as they "
                     f"were" if restored else f"it had written nothing in {results_dir} yet")
            raise stop.stopped(f"in notebook {name} ({path.name}) {_where(current)}, "
                               f"{hms(time.perf_counter() - t0)} into it; {files}, and its notebook "
                               f"is not rewritten", finished, name, only) from None
        backup.discard()
        if not isinstance(exc, PapermillExecutionError):
            Path(tmp).unlink(missing_ok=True)
            if isinstance(exc, RuntimeError):  # nbclient's DeadKernelError, a kernel that did not start
                raise ReproduceError(
                    f"notebook {name} ({path}): its kernel stopped {_where(current)}: "
                    f"{type(exc).__name__}: {exc}{_tail(kernel_output)}\nResults of the notebooks "
                    f"before it are kept.") from None
            raise
        failed = results_dir / "failed" / path.name
        failed.parent.mkdir(exist_ok=True)
        shutil.move(tmp, failed)
        raise ReproduceError(
            f"notebook {name} ({path}) failed in cell {exc.cell_index} "
            f"(execution count {exc.exec_count}): {exc.ename}: {exc.evalue}\n"
            f"The executed copy with the traceback is at {failed}; results of the "
            f"notebooks before it are kept.") from None
    finally:
        kernel_output.close()
        if live:
            live.flush()
    stop.kernel_done()
    backup.discard()
    seconds = time.perf_counter() - t0
    target = path if write_back else results_dir / "notebooks" / path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_metadata(tmp)
    make_readable(tmp)
    os.replace(tmp, target)
    (results_dir / "failed" / path.name).unlink(missing_ok=True)  # stale copy of a past failure
    return seconds


def _where(current):
    if current["index"] is None:
        return "while its kernel was starting"
    return f"in cell {current['index']} ({first_line(current['source'])})"


def _tail(output, lines=15):
    """The last lines of a kernel process's own output, less TensorFlow's start-up log."""
    output.seek(0)
    text = drop_tf_log(output.read().decode(errors="replace")).strip().splitlines()[-lines:]
    return ("\nThe kernel process's last output:\n  " + "\n  ".join(text)) if text else ""


def main(argv=None):
    # Before anything here or in a kernel imports TensorFlow: its C++ start-up log is noise.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = argparse.ArgumentParser(prog="python -m aae", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("reproduce", help="execute every notebook and regenerate results/")
    rep.add_argument("--quick", action="store_true",
                     help=f"small settings, written to {QUICK_RESULTS.name}/ (never results/)")
    which = rep.add_mutually_exclusive_group()
    which.add_argument("--only", nargs="+", metavar="NAME", help="run only these notebooks")
    which.add_argument("--from", dest="start", metavar="NAME",
                       help="restart a run at this notebook: the ones before it keep their results "
                            "(they must have finished in the output folder), the summary covers all")
    rep.add_argument("-p", "--parameter", action="append", metavar="KEY=VALUE", default=[],
                     help="override a parameter in every notebook that has it")
    rep.add_argument("--output-dir", type=Path,
                     help="where figures, metrics and (unless it is results/) the executed notebooks go")
    rep.add_argument("--dataset", choices=DATASETS,
                     help="the dataset every notebook uses (default: each notebook's own, mnist); "
                          "other than mnist, results go to results/<dataset>/")
    rep.add_argument("--backend", choices=tuple(BACKENDS),
                     help="Keras backend for the notebooks (default: $KERAS_BACKEND, else tensorflow)")
    rep.add_argument("--no-progress", action="store_true",
                     help="do not show each cell, its output and each epoch as the notebooks run")
    summ = sub.add_parser("summary", help="rewrite a results folder's README.md table from its "
                                           "metrics and timings (and a README block)")
    summ.add_argument("results_dir", type=Path, help="a folder written by `reproduce`")
    summ.add_argument("--readme-block", metavar="NAME",
                      help="also replace the <!-- NAME:start --> ... <!-- NAME:end --> block of README.md "
                           "or of the docs/ page that holds it")
    args = parser.parse_args(argv)
    if args.command == "summary":
        rows = summary_rows(args.results_dir)
        if not rows:
            print(f"error: {args.results_dir} holds no notebook with both metrics/*.json and "
                  f"{TIMINGS}; run `python -m aae reproduce --output-dir {args.results_dir}`",
                  file=sys.stderr)
            return 1
        table = write_summary(args.results_dir, rows, quick=False).split("\n", 4)[4]
        if args.readme_block and not update_readme_block(table, name=args.readme_block):
            print(f"error: {block_page(args.readme_block).relative_to(PROJECT_ROOT)} has no "
                  f"<!-- {args.readme_block}:start/end --> block", file=sys.stderr)
            return 1
        if args.readme_block and args.results_dir.resolve() == RESULTS.resolve():
            # the project's own results: the blocks built from them are refreshed as after a full run
            update_readme_block(datasets_table(RESULTS), name="datasets")
            update_readme_block(paper_table(RESULTS), name="aae-paper")
            update_readme_block(notebooks_table(RESULTS), name="notebooks")
        print(table)
        return 0
    try:
        run(only=args.only, quick=args.quick, overrides=parse_overrides(args.parameter),
            output_dir=args.output_dir, progress=not args.no_progress, backend=args.backend,
            start=args.start, dataset=args.dataset)
    except Stopped as exc:
        print(str(exc), file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:  # Ctrl-C outside the notebooks (checking, summary): nothing half done
        print("stopped by Ctrl-C (SIGINT) outside any notebook", file=sys.stderr)
        return 128 + signal.SIGINT
    except ReproduceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
