"""Stopping a run safely: SIGINT and SIGTERM go to the running notebook's kernel (killed if it does
not stop within GRACE_SECONDS), and a backup puts back what a stopped notebook had written."""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from ..files import atomic_path

# After an interrupt, a kernel that has not stopped (busy in C code, or between cells, where
# ipykernel ignores SIGINT) is killed: a stop never waits for a long cell to end.
GRACE_SECONDS = 4.0
# The matplotlib backend every kernel starts with, so that each figure cell stores its image.
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


class ReproduceError(RuntimeError):
    """A notebook failed, or the command line named something that does not exist."""


class Stopped(ReproduceError):
    """SIGINT or SIGTERM stopped the run; `status` is the conventional exit status (130, 143)."""

    def __init__(self, message, signum):
        super().__init__(message)
        self.status = 128 + signum


class Halt(Exception):
    """Raised in papermill's cell loop to keep it from starting a cell once the run is stopping."""


class StopOnSignals:
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
                # Figures: the inline backend whatever the caller's MPLBACKEND says (Agg, say,
                # stores no image in the notebook).
                env = {**kwargs.pop("env", os.environ), "MPLBACKEND": INLINE_BACKEND}
                await super().start_kernel(**{"stdout": output, "stderr": subprocess.STDOUT, "env": env,
                                              **kwargs})

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
def quiet_papermill(stop):
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


class Backup:
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
