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
import contextlib
import importlib.util
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .files import atomic_path, make_readable
from .params import BACKENDS, problems
from .paths import NOTEBOOKS, PROJECT_ROOT, QUICK_RESULTS, RESULTS


# Small settings for --quick, injected into every notebook that has the parameter.
QUICK = {
    "epochs": 2,
    "train_size": 2000,
    "test_size": 1000,
    "iwae_samples": 20,
    "tsne_points": 500,
    "sparse_epochs": 1,
    "epochs_2d": 1,
    "epochs_8d": 2,
    "parzen_samples": 1000,
    "parzen_val_size": 500,
    "grid_n": 40,
    "classifier_epochs": 1,
}


class ReproduceError(RuntimeError):
    """A notebook failed, or the command line named something that does not exist."""


class Stopped(ReproduceError):
    """SIGINT or SIGTERM stopped the run; `status` is the conventional exit status (130, 143)."""

    def __init__(self, message, signum):
        super().__init__(message)
        self.status = 128 + signum


# After an interrupt, a kernel that has not stopped (busy in C code, or between cells, where
# ipykernel ignores SIGINT) is killed: a stop never waits for a long cell to end.
GRACE_SECONDS = 4.0


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


def _fmt(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


TIMINGS = "timings.json"  # per notebook: wall seconds of its last run here and the metrics files it wrote


def read_runs(results_dir):
    """{notebook: {"seconds": s, "metrics": [metrics files it wrote, relative to results_dir]}}."""
    path = Path(results_dir) / TIMINGS
    raw = json.loads(path.read_text()) if path.exists() else {}
    return {n: (v if isinstance(v, dict) else {"seconds": v, "metrics": []}) for n, v in raw.items()}


def read_timings(results_dir):
    """{notebook: wall seconds of its last run into `results_dir`}."""
    return {n: run["seconds"] for n, run in read_runs(results_dir).items()}


def record_timing(results_dir, name, seconds, metrics_files=()):
    """Store a finished notebook's wall time and the metrics files it wrote in `timings.json`."""
    runs = {**read_runs(results_dir), name: {"seconds": round(seconds, 1), "metrics": sorted(metrics_files)}}
    with atomic_path(Path(results_dir) / TIMINGS) as tmp:
        tmp.write_text(json.dumps(runs, indent=2, sort_keys=True) + "\n")


def _metrics_state(results_dir):
    """{metrics file: (mtime, size)}, to see which files a notebook wrote."""
    folder = Path(results_dir) / "metrics"
    return {str(p.relative_to(results_dir)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in sorted(folder.glob("*.json"))} if folder.is_dir() else {}


def _metrics_files(results_dir, name):
    """The metrics JSONs notebook `name` wrote in its last run there, read ([] if none)."""
    files = read_runs(results_dir).get(name, {}).get("metrics", [])
    return [json.loads((Path(results_dir) / f).read_text()) for f in files
            if (Path(results_dir) / f).is_file()]


def _metrics(results_dir, name):
    """The `metrics` entries of a notebook's metrics files, merged."""
    merged = {}
    for data in _metrics_files(results_dir, name):
        for key, value in data.get("metrics", {}).items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged.setdefault(key, value)
    return merged


def headline(results_dir, name):
    """The notebook's headline numbers from its metrics JSON (its `headline` entry)."""
    metrics = _metrics(results_dir, name)
    if "headline" in metrics:
        return metrics["headline"]
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float))}


def summary_rows(results_dir, names=None):
    """[(name, seconds, headline)] for the notebooks with both a timing and metrics there."""
    timings = read_timings(results_dir)
    names = list(discover()) if names is None else names
    return [(n, timings[n], headline(results_dir, n)) for n in names
            if n in timings and _runtime(results_dir, n) is not None]


def write_summary(results_dir, rows, quick):
    """Write `<results_dir>/README.md`: per-notebook wall time and headline metrics."""
    lines = ["# Results", "",
             "Generated by `python -m aae reproduce"
             + (" --quick" if quick else "") + "` (or `python -m aae summary`); do not edit by hand.", "",
             "| notebook | wall time (s) | headline metrics |", "|---|---:|---|"]
    for name, seconds, numbers in rows:
        shown = "; ".join(f"{k} = {_fmt(v)}" for k, v in numbers.items()) or "-"
        lines.append(f"| {name} | {seconds:.0f} | {shown} |")
    total = sum(r[1] for r in rows)
    lines.append(f"| **total** | {total:.0f} ({total / 60:.1f} min) | |")
    lines += ["", measured_on([_runtime(results_dir, name) for name, *_ in rows])]
    for name, *_ in rows:  # sentences a notebook wrote from its own numbers
        answers = _metrics(results_dir, name).get("answer", {})
        lines += ["", *(f"- {text}" for text in answers.values())] if answers else []
    text = "\n".join(lines) + "\n"
    with atomic_path(Path(results_dir) / "README.md") as tmp:
        tmp.write_text(text)
    return text


BACKEND_NAMES = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}


def _runtime(results_dir, name):
    return next((d["runtime"] for d in _metrics_files(results_dir, name) if d.get("runtime")), None)


def measured_on(runtimes):
    """One sentence naming the backend(s), versions and device(s) the numbers came from."""
    seen = []
    for r in runtimes:
        if r:
            text = (f"{r['device']}, {BACKEND_NAMES.get(r['backend'], r['backend'])} "
                    f"{r['backend_version']}, Keras {r['keras']}, Python {r['python']}")
            if text not in seen:
                seen.append(text)
    return ("Measured on " + "; ".join(seen) + ".") if seen else "Where measured: not recorded."


def update_readme_block(table, readme=PROJECT_ROOT / "README.md", name="results"):
    """Replace the generated block between `<!-- name:start -->` and `<!-- name:end -->` in
    README.md, if it has them; returns whether it did."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    readme = Path(readme)
    if not readme.exists():
        return False
    text = readme.read_text()
    head, sep, rest = text.partition(start)
    _, sep2, tail = rest.partition(end)
    if not (sep and sep2):
        return False
    with atomic_path(readme) as tmp:
        tmp.write_text(f"{head}{start}\n{table}{end}{tail}")
    return True


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
        progress=True, log=_say, backend=None, start=None):
    """Execute the selected notebooks in order; return [(name, seconds, headline)].

    `only` runs just those notebooks; `start` runs every notebook from that one on, keeping the
    results of the ones before it (they must have finished in that folder before). Raises
    ReproduceError naming the notebook and cell when one fails, and Stopped when SIGINT or
    SIGTERM stops the run; notebooks that finished before keep their outputs either way.
    `backend` sets KERAS_BACKEND for the kernels.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before any kernel (or this process) imports TensorFlow
    backend = use_backend(backend)

    available = discover(notebooks_dir)
    if only and start:
        raise ReproduceError("use --only or --from, not both")
    notebooks = starting_at(available, start) if start else select(available, only)
    overrides = dict(overrides or {})
    params_of = {n: notebook_parameters(p) for n, p in notebooks.items()}
    known = set().union(*params_of.values())
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ReproduceError(f"unknown parameter(s) {unknown}; the selected notebooks take: "
                             f"{', '.join(sorted(known))}")
    if output_dir is None:
        output_dir = QUICK_RESULTS if quick else RESULTS
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
    clock = _Clock(list(notebooks), _estimates(results_dir, quick))
    rows = []
    with _StopOnSignals() as stop:
        for i, (name, path) in enumerate(notebooks.items(), 1):
            if stop.signum:
                raise stop.stopped(f"before notebook {name} started", rows, name, only)
            clock.begin(name)
            shown = ", ".join(f"{k}={v!r}" for k, v in plans[name].items() if k != "results_dir")
            log(f"[{i}/{len(notebooks)}] {name} ({path.name}) on {backend}"
                f"{' with ' + shown if shown else ''}{clock.expected()}")
            before = _metrics_state(results_dir)
            seconds = _execute(name, path, plans[name], results_dir, write_back, stop, clock,
                               log if progress else None, rows, only)
            after = _metrics_state(results_dir)
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
    else:
        for name, seconds, numbers in rows:
            log(f"{name}: {seconds:.0f} s; " + "; ".join(f"{k} = {_fmt(v)}" for k, v in numbers.items()))
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
    backup = _Backup(results_dir)
    kernel_output = tempfile.TemporaryFile()  # the kernel process's own output (see kernel_manager_class)
    live = _LiveLog(lambda text: log(f"{clock.prefix()} {text}")) if log else None
    current = {"index": None, "source": ""}  # the cell running now, for the message after a stop

    def on_cell_start(cell, cell_index):
        if stop.signum:  # the kernel ignores an interrupt between cells: start no other cell
            raise _Halt
        if cell.cell_type == "code" and cell.source.strip():
            current.update(index=cell_index, source=cell.source)
            if live and not {"parameters", "injected-parameters"} & set(cell.metadata.get("tags", [])):
                live.flush()
                log(f"{clock.prefix()} cell {cell_index}: {_first_line(cell.source)}  ({clock.status()})")

    t0 = time.perf_counter()
    try:
        with _quiet_papermill(stop):
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
                               f"{_clock(time.perf_counter() - t0)} into it; {files}, and its notebook "
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
    _clean_metadata(tmp)
    make_readable(tmp)
    os.replace(tmp, target)
    (results_dir / "failed" / path.name).unlink(missing_ok=True)  # stale copy of a past failure
    return seconds


def _where(current):
    if current["index"] is None:
        return "while its kernel was starting"
    return f"in cell {current['index']} ({_first_line(current['source'])})"


def _tail(output, lines=15):
    """The last lines of a kernel process's own output, less TensorFlow's start-up log."""
    output.seek(0)
    text = _drop_tf_log(output.read().decode(errors="replace")).strip().splitlines()[-lines:]
    return ("\nThe kernel process's last output:\n  " + "\n  ".join(text)) if text else ""


class _Halt(Exception):
    """Raised in papermill's cell loop to keep it from starting a cell once the run is stopping."""


class _StopOnSignals:
    """While notebooks run: SIGINT and SIGTERM interrupt the running kernel instead of this process.

    The first signal sends SIGINT to the kernel (KeyboardInterrupt in its cell) and kills it if it
    still runs GRACE_SECONDS later; a second signal kills it at once. The runner sees the
    notebook end, finds `signum` set, cleans up and raises Stopped.
    """

    def __init__(self):
        self.signum = None
        self.kernel = None  # the running notebook's kernel manager (jupyter_client)
        self._timer = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # signal handlers live there only
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def __exit__(self, *exc):
        self._cancel_timer()
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        return False

    def _on_signal(self, signum, frame):
        if self.signum is not None:  # asked twice: no more waiting
            self._signal_kernel(signal.SIGKILL)
            return
        self.signum = signum
        self._signal_kernel(signal.SIGINT)
        self._timer = threading.Timer(GRACE_SECONDS, self._signal_kernel, (signal.SIGKILL,))
        self._timer.daemon = True
        self._timer.start()

    def _process(self):
        return getattr(getattr(self.kernel, "provisioner", None), "process", None)

    def _signal_kernel(self, signum):
        process = self._process()
        if process is None or process.poll() is not None:  # poll() also reaps: no stale pid is signalled
            return
        with contextlib.suppress(OSError):
            os.killpg(process.pid, signum)  # the kernel leads its own session: its whole group

    def _cancel_timer(self):
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def kernel_done(self):
        """After a notebook: after a stop, make sure its kernel is gone, then forget it."""
        self._cancel_timer()
        process = self._process()
        if self.signum and process is not None:
            self._signal_kernel(signal.SIGKILL)
            with contextlib.suppress(Exception):
                process.wait(timeout=10)
        self.kernel = None

    def kernel_manager_class(self, output):
        """A kernel manager class for nbclient that tells this object which kernel is running and
        sends the kernel process's own stdout and stderr to the file `output`."""
        from jupyter_client.manager import AsyncKernelManager

        stop = self

        class KernelManager(AsyncKernelManager):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                stop.kernel = self

            async def start_kernel(self, **kwargs):
                # What cells print reaches the runner as messages. The process's own output is
                # ipykernel's notices and TensorFlow's C++ start-up log, which TensorFlow 2.21
                # writes whatever TF_CPP_MIN_LOG_LEVEL says: kept out of the terminal, shown
                # only if the kernel dies.
                await super().start_kernel(**{"stdout": output, "stderr": subprocess.STDOUT, **kwargs})

            async def shutdown_kernel(self, now=False, restart=False):
                # Stopping: kill at once; a graceful shutdown waits for a busy kernel to answer.
                await super().shutdown_kernel(now=now or stop.signum is not None, restart=restart)

        return KernelManager

    def stopped(self, where, finished, name, only):
        """The Stopped error for a stop `where`, listing the notebooks that keep their results."""
        how = "Ctrl-C (SIGINT)" if self.signum == signal.SIGINT else signal.Signals(self.signum).name
        kept = (f"the {len(finished)} notebook(s) that finished keep their results "
                f"({', '.join(n for n, *_ in finished)})" if finished else "no notebook had finished")
        if name is None:
            again = ""
        elif only or not finished:
            again = "; run the same command again to redo it"
        else:
            again = f"; to carry on from there, run the same command with --from {name}"
        return Stopped(f"stopped by {how} {where}; {kept}{again}.", self.signum)


@contextlib.contextmanager
def _quiet_papermill(stop):
    """Keep papermill's own log (paths, kernel start, kernel-died errors after a stop) out of the
    output: the runner says what matters."""
    logger = logging.getLogger("papermill")
    old_level, old_propagate = logger.level, logger.propagate
    logger.setLevel(logging.ERROR)
    logger.propagate = False
    logger.addHandler(handler := _UnlessStopping(stop))
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        logger.propagate = old_propagate


class _UnlessStopping(logging.StreamHandler):
    """Papermill's errors, except those a stop causes on purpose (a killed kernel)."""

    def __init__(self, stop):
        super().__init__(sys.stderr)
        self.stop = stop

    def emit(self, record):
        if not self.stop.signum:
            super().emit(record)


def _result_files(folder):
    """Files a notebook may write in a results folder: all but hidden ones, the runner's
    notebooks/ and failed/, and other results folders kept inside it (e.g. results/gpu-jax)."""
    for path in folder.rglob("*"):
        rel = path.relative_to(folder)
        if (path.is_file() and not any(part.startswith(".") for part in rel.parts)
                and rel.parts[0] not in ("notebooks", "failed")
                and not (len(rel.parts) > 1 and (folder / rel.parts[0] / "metrics").is_dir())):
            yield path


def _stat(path):
    st = path.stat()
    return st.st_ino, st.st_mtime_ns, st.st_size  # a new inode: rewritten through a rename


class _Backup:
    """A copy of a results folder before a notebook runs, put back if the run is stopped in it,
    so a stopped notebook leaves no half of its figures and models next to the old metrics."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.copy = Path(tempfile.mkdtemp(prefix="aae-reproduce-"))
        self.stats = {}
        for path in _result_files(self.folder):
            rel = path.relative_to(self.folder)
            (self.copy / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, self.copy / rel)
            self.stats[rel] = _stat(path)

    def restore(self):
        """Put back what the notebook changed or removed, delete what it added; returns those paths."""
        now = {p.relative_to(self.folder): p for p in _result_files(self.folder)}
        changed = []
        for rel, path in now.items():
            if rel not in self.stats:
                path.unlink(missing_ok=True)
                changed.append(rel)
        for rel, stat in self.stats.items():
            if rel not in now or _stat(self.folder / rel) != stat:
                with atomic_path(self.folder / rel) as tmp:
                    shutil.copy2(self.copy / rel, tmp)
                changed.append(rel)
        self.discard()
        return changed

    def discard(self):
        shutil.rmtree(self.copy, ignore_errors=True)


def _clock(seconds):
    """Seconds as m:ss (or h:mm:ss)."""
    m, s = divmod(int(round(seconds)), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


def _first_line(source, width=70):
    lines = [line.strip() for line in source.splitlines() if line.strip()]
    line = next((x for x in lines if not x.startswith("#")), lines[0] if lines else "")
    return line if len(line) <= width else line[:width - 3] + "..."


class _Clock:
    """The running line: which notebook of how many, time elapsed, and the time left as estimated
    from the per-notebook times of the last run (a results folder's timings.json)."""

    def __init__(self, names, estimates):
        self.names, self.estimates = names, estimates
        self.t_run = self.t_notebook = time.perf_counter()
        self.current = None

    def begin(self, name):
        self.current, self.t_notebook = name, time.perf_counter()

    def expected(self):
        seconds = self.estimates.get(self.current)
        return f"; {seconds:.0f} s last time" if seconds is not None else ""

    def prefix(self):
        i = self.names.index(self.current) + 1
        return f"[{i}/{len(self.names)} {self.current} {_clock(time.perf_counter() - self.t_notebook)}]"

    def left(self, done=False):
        """Estimated seconds left in the run (`done`: the current notebook has finished), or
        None without timings for every notebook left."""
        ahead = self.names[self.names.index(self.current) + done:]
        if any(n not in self.estimates for n in ahead):
            return None
        spent = time.perf_counter() - self.t_notebook
        current = 0 if done else max(self.estimates[self.current] - spent, 0)
        return current + sum(self.estimates[n] for n in ahead[0 if done else 1:])

    def status(self, done=False):
        left = self.left(done)
        return (f"run {_clock(time.perf_counter() - self.t_run)}"
                + (f", about {_clock(left)} left" if left is not None else ""))


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_EPOCH = re.compile(r"^Epoch (\d+)/(\d+)$")
# The end of a Keras progress bar: "469/469 ━━━━ 3s 6ms/step - loss: ..." (verbose=1) or
# "469/469 - 3s - 6ms/step - loss: ..." (verbose=2).
_BAR = re.compile(r"^\s*(\d+)/(\d+) (?:━+\s*|- )(.*)$")


class _Stream:
    """A file-like object papermill writes a kernel's stdout or stderr to; hands on whole lines."""

    def __init__(self, on_line, stderr=False):
        self.on_line, self.stderr, self.buffer = on_line, stderr, ""

    def write(self, text):
        self.buffer += text
        *lines, rest = self.buffer.split("\n")
        # A line redrawn in place (a progress bar) counts once: as it last looked.
        self.buffer = rest.rsplit("\r", 1)[-1]
        for line in lines:
            self.on_line(line.rsplit("\r", 1)[-1], self.stderr)

    def flush(self):
        pass


class _LiveLog:
    """A running notebook's output as log lines: what its cells print, one line per epoch (the
    finished progress bar, after its "Epoch n/N" line), no progress-bar redraws, no TensorFlow
    start-up chatter."""

    def __init__(self, emit):
        self.emit = emit
        self.epoch = None
        self.stdout, self.stderr = _Stream(self._line), _Stream(self._line, stderr=True)

    def _line(self, line, stderr):
        line = _ANSI.sub("", line).rstrip()
        if not line.strip() or (stderr and _TF_LOG.match(line)):
            return
        if _EPOCH.match(line):
            self.flush()
            self.epoch = line
            return
        bar = _BAR.match(line)
        if bar:
            done, total, rest = bar.groups()
            if int(done) < int(total):  # a bar printed line by line: only its last state
                return
            head, self.epoch = self.epoch or f"{done}/{total} steps", None
            self.emit(f"{head}: {rest}")
            return
        if not stderr:  # a warning may come between an epoch's two lines; a print ends the pair
            self.flush()
        self.emit(line)

    def flush(self):
        """Show a pending "Epoch n/N" line that no bar followed (fit with verbose=0 prints none)."""
        if self.epoch:
            self.emit(self.epoch)
            self.epoch = None


# TensorFlow's C++ start-up log (glog format) and absl's preamble: noise in a rendered notebook.
_TF_LOG = re.compile(r"^([IWEF]\d{4} [\d:.]+ +\d+ \S+:\d+\]|WARNING: All log messages before absl|"
                     r"To enable the following instructions:)")


def _drop_tf_log(text):
    return "".join(line for line in text.splitlines(keepends=True) if not _TF_LOG.match(line))


def _collapse_carriage_returns(text):
    """Keep what a terminal would show: the part of each line after its last carriage return."""
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


def _clean_metadata(path):
    """Drop per-run timestamps and progress-bar redraws, so re-runs give small, clean diffs."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        merged = []
        for out in cell.get("outputs", []):
            if (out.get("output_type") == "stream" and merged
                    and merged[-1].get("output_type") == "stream" and merged[-1]["name"] == out["name"]):
                merged[-1]["text"] += out["text"]  # progress bars arrive as many small writes
            else:
                merged.append(out)
        for out in merged:
            if out.get("output_type") == "stream":
                out["text"] = _collapse_carriage_returns(out["text"])
                if out["name"] == "stderr":
                    out["text"] = _drop_tf_log(out["text"])
        if "outputs" in cell:
            cell["outputs"] = [o for o in merged if o.get("output_type") != "stream" or o["text"]]
        # Per-run bookkeeping (times, status, paths) would show up in every `git diff`.
        cell.metadata.pop("execution", None)
        cell.metadata.pop("papermill", None)
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell["id"] = "injected-parameters"  # papermill gives it a new random id every run
    nb.metadata.pop("papermill", None)
    nbformat.write(nb, path)


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
    rep.add_argument("--backend", choices=tuple(BACKENDS),
                     help="Keras backend for the notebooks (default: $KERAS_BACKEND, else tensorflow)")
    rep.add_argument("--no-progress", action="store_true",
                     help="do not show each cell, its output and each epoch as the notebooks run")
    summ = sub.add_parser("summary", help="rewrite a results folder's README.md table from its "
                                           "metrics and timings (and a README block)")
    summ.add_argument("results_dir", type=Path, help="a folder written by `reproduce`")
    summ.add_argument("--readme-block", metavar="NAME",
                      help="also replace README.md's <!-- NAME:start --> ... <!-- NAME:end --> block")
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
            print(f"error: README.md has no <!-- {args.readme_block}:start/end --> block", file=sys.stderr)
            return 1
        print(table)
        return 0
    try:
        run(only=args.only, quick=args.quick, overrides=parse_overrides(args.parameter),
            output_dir=args.output_dir, progress=not args.no_progress, backend=args.backend,
            start=args.start)
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
