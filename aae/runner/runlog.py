"""What a run shows and keeps of a notebook's output: the live log (one line per epoch, no
progress-bar redraws, no TensorFlow start-up chatter), the running clock, and executed notebooks
cleaned of per-run metadata so that re-runs give clean diffs."""
from __future__ import annotations

import re
import time

def hms(seconds):
    """Seconds as m:ss (or h:mm:ss)."""
    m, s = divmod(int(round(seconds)), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


def first_line(source, width=70):
    lines = [line.strip() for line in source.splitlines() if line.strip()]
    line = next((x for x in lines if not x.startswith("#")), lines[0] if lines else "")
    return line if len(line) <= width else line[:width - 3] + "..."


class Clock:
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
        return f"[{i}/{len(self.names)} {self.current} {hms(time.perf_counter() - self.t_notebook)}]"

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
        return (f"run {hms(time.perf_counter() - self.t_run)}"
                + (f", about {hms(left)} left" if left is not None else ""))


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


class LiveLog:
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


def drop_tf_log(text):
    return "".join(line for line in text.splitlines(keepends=True) if not _TF_LOG.match(line))


def collapse_carriage_returns(text):
    """Keep what a terminal would show: the part of each line after its last carriage return."""
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


def clean_metadata(path):
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
                out["text"] = collapse_carriage_returns(out["text"])
                if out["name"] == "stderr":
                    out["text"] = drop_tf_log(out["text"])
        if "outputs" in cell:
            cell["outputs"] = [o for o in merged if o.get("output_type") != "stream" or o["text"]]
        # Per-run bookkeeping (times, status, paths) would show up in every `git diff`.
        cell.metadata.pop("execution", None)
        cell.metadata.pop("papermill", None)
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell["id"] = "injected-parameters"  # papermill gives it a new random id every run
    nb.metadata.pop("papermill", None)
    nbformat.write(nb, path)
