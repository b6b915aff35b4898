"""Atomic writes: every file pdlib writes appears whole or not at all.

Each writer puts its bytes in a temporary file in the destination's folder
(same file system) and moves it over the destination with :func:`os.replace`,
which is atomic on POSIX and Windows. A reader never sees a half-written file,
and a writer killed part way leaves the previous version (or nothing) behind.
Files get mode 0644 (``mkstemp`` would leave 0600), like any file written with
``open``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

#: Permission bits of written files: owner read/write, everyone read.
FILE_MODE = 0o644


@contextlib.contextmanager
def replacing(path: str | os.PathLike, *, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it over ``path``.

    Parameters
    ----------
    path : path-like
        Destination; its folder is created if needed.
    suffix : str, default ".tmp"
        Suffix of the temporary file (some writers, e.g. ``numpy.save``,
        choose behaviour by the file name).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> with replacing(out) as tmp:
    ...     _ = tmp.write_text("done")
    >>> out.read_text()
    'done'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(handle)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike, data: bytes, *, fsync: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically; ``fsync`` flushes it to disk before the move."""
    with replacing(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
    return Path(path)


def write_text(path: str | os.PathLike, text: str, *, fsync: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"), fsync=fsync)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (for stale lock files).

    A process that exists but belongs to another user counts as alive.
    """
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
