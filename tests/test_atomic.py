"""Atomic writes (pdlib.atomic): whole or nothing, no temporary left, readable mode."""

import os
import stat

import numpy as np
import pytest

from pdlib import atomic


def test_write_text_replaces_whole_file_with_a_readable_mode(tmp_path):
    out = tmp_path / "sub" / "a.txt"
    atomic.write_text(out, "first")
    atomic.write_text(out, "second", fsync=True)
    assert out.read_text() == "second"
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert [p.name for p in out.parent.iterdir()] == ["a.txt"]


def test_a_failing_writer_keeps_the_previous_version_and_leaves_no_temporary(tmp_path):
    out = tmp_path / "a.npy"
    np.save(out, np.arange(3))
    with pytest.raises(RuntimeError, match="killed"):
        with atomic.replacing(out) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed mid-write")
    assert np.load(out).tolist() == [0, 1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["a.npy"]


def test_write_bytes_returns_the_destination(tmp_path):
    out = atomic.write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert out == tmp_path / "b.bin" and out.read_bytes() == b"\x00\x01"


def test_pid_alive_tells_running_from_finished_processes():
    import subprocess
    import sys

    assert atomic.pid_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not atomic.pid_alive(child.pid)


def test_process_identity_names_host_pid_and_start_time():
    import socket

    me = atomic.process_identity()
    assert me["host"] == socket.gethostname() and me["pid"] == os.getpid()
    assert me["start"] == atomic.process_start(os.getpid()) and isinstance(me["start"], int)
    assert atomic.owner_alive(me)
    assert not atomic.owner_alive({**me, "start": me["start"] + 1})  # same PID, another process
    assert atomic.process_start(2**22 + 12345) is None  # no such process


def test_temporaries_carry_the_writer_and_only_stale_ones_of_the_destination_go(tmp_path):
    out = tmp_path / "a.txt"
    with atomic.replacing(out) as tmp:
        assert tmp.name.startswith(f".a.txt.{os.getpid()}~")
        tmp.write_text("x")
        # another destination's stale temporary is left to that destination's next write
        other = tmp_path / f".b.txt.{2**22 + 1}~1~{atomic._host_hash(atomic.process_identity()['host'])}.zz.tmp"
        other.write_text("half")
    assert other.exists()
    assert atomic.remove_stale_temporaries(tmp_path) == [other]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
