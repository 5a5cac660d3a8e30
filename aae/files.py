"""Writing result files safely: never a half-written file, never an unreadable one."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def make_readable(path):
    """Give a file made by `mkstemp` (mode 0600) the permissions a normal file would get."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; if the block succeeds it is renamed over `path`.

    On an exception the temporary file is removed and any existing `path` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        make_readable(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
