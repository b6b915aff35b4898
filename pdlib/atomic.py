"""Atomic writes: every file pdlib writes appears whole or not at all.

Each writer puts its bytes in a temporary file in the destination's folder
(same file system) and moves it over the destination with :func:`os.replace`,
which is atomic on POSIX and Windows. A reader never sees a half-written file,
and a writer killed part way leaves the previous version (or nothing) behind.
Files get mode 0644 (``mkstemp`` would leave 0600), like any file written with
``open``.

A writer killed part way leaves its temporary file behind. Temporary names
carry the writer's identity (:func:`process_identity`: host, PID, process
start time), so the next write to the same destination, or
:func:`remove_stale_temporaries` on the folder, removes those whose writer
is gone. The same identity judges lock files (:func:`owner_alive`): a PID
that now belongs to an unrelated process does not keep a lock.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import re
import socket
import tempfile
import time
from pathlib import Path
from typing import Iterator

#: Permission bits of written files: owner read/write, everyone read.
FILE_MODE = 0o644

#: A temporary file whose writer cannot be identified (another host, an old
#: name without an identity) is removed only when older than this, seconds.
STALE_AFTER_S = 24 * 3600.0

#: ``.<destination name>.<pid>~<start>~<host hash>.<random><suffix>``
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<pid>[0-9]+)~(?P<start>[0-9]*)~(?P<host>[0-9a-f]{8})\.[^.]+(\.[^/]*)?$")


def _host_hash(host: str) -> str:
    return hashlib.sha256(host.encode("utf-8")).hexdigest()[:8]


def process_start(pid: int) -> int | None:
    """Start time of process ``pid`` in clock ticks since boot (``/proc/<pid>/stat`` field 22); None if unknown.

    With the PID it identifies a process even after the PID is reused.
    """
    try:
        text = Path(f"/proc/{int(pid)}/stat").read_text()
    except (OSError, ValueError):
        return None
    try:
        return int(text[text.rindex(")") + 2:].split()[19])  # fields after "pid (comm)" start at field 3
    except (ValueError, IndexError):
        return None


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def process_identity(pid: int | None = None) -> dict:
    """``{"host", "pid", "start", "boot"}`` of a process of this machine (default: this one).

    ``start`` is :func:`process_start` (None where ``/proc`` is missing);
    ``boot`` the kernel's boot id, so that a start time of an earlier boot
    is not mistaken for one of this boot.
    """
    pid = os.getpid() if pid is None else int(pid)
    return {"host": socket.gethostname(), "pid": pid, "start": process_start(pid), "boot": _boot_id()}


def owner_alive(identity: dict) -> bool:
    """Whether the process an identity (:func:`process_identity`) names still runs.

    Judged by PID and start time (and boot id) on this host. A PID that is
    alive but started at another time is an unrelated process: not alive. A
    process of another host cannot be judged and counts as alive.
    """
    if identity.get("host") not in (None, socket.gethostname()):
        return True
    try:
        pid = int(identity.get("pid") or 0)
    except (TypeError, ValueError):
        return False
    if pid <= 0 or not pid_alive(pid):
        return False
    boot = identity.get("boot")
    if boot and _boot_id() and boot != _boot_id():
        return False
    start = identity.get("start")
    now = process_start(pid)
    return start is None or now is None or int(start) == now


def _owner_tag() -> str:
    start = process_start(os.getpid())
    return f"{os.getpid()}~{'' if start is None else start}~{_host_hash(socket.gethostname())}"


def remove_stale_temporaries(folder: str | os.PathLike, *, name: str | None = None) -> list[Path]:
    """Remove temporary files that killed writers left in ``folder``.

    Parameters
    ----------
    folder : path-like
    name : str, optional
        Only temporaries of this destination file name.

    Returns
    -------
    removed : list of Path

    Notes
    -----
    A temporary of this host is stale when its writer (PID and start time
    in its name) no longer runs; one of another host, or without an
    identity in its name, when it is older than :data:`STALE_AFTER_S`.
    """
    folder = Path(folder)
    pattern = f".{glob.escape(name)}.*" if name is not None else ".*"
    here, removed = _host_hash(socket.gethostname()), []
    for path in folder.glob(pattern):
        match = _TEMPORARY.match(path.name)
        if match is None or (name is not None and match["name"] != name):
            continue
        if match["host"] == here:
            start = int(match["start"]) if match["start"] else None
            stale = not owner_alive({"pid": int(match["pid"]), "start": start})
        else:
            try:
                stale = time.time() - path.stat().st_mtime > STALE_AFTER_S
            except OSError:
                continue
        if stale:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


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
    remove_stale_temporaries(path.parent, name=path.name)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{_owner_tag()}.", suffix=suffix)
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


def write_json(path: str | os.PathLike, obj) -> Path:
    """Atomic, sorted, indented JSON (synced to disk: run records)."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", fsync=True)


def write_csv(path: str | os.PathLike, table) -> Path:
    """Atomic CSV of a pandas DataFrame without its index, floats at full precision (synced to disk)."""
    return write_text(path, table.to_csv(index=False, float_format="%.17g"), fsync=True)


def save_torch(path: str | os.PathLike, obj) -> Path:
    """Atomic ``torch.save`` (checkpoints, weights), synced to disk."""
    import io

    import torch  # only the writers of checkpoints need it

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return write_bytes(path, buffer.getvalue(), fsync=True)


def save_npy(path: str | os.PathLike, array) -> Path:
    """Atomic ``numpy.save`` without pickles (cached slices)."""
    import numpy as np

    with replacing(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array, allow_pickle=False)
    return Path(path)


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
