"""The shipped SLURM profile on a real single-node SLURM cluster.

The fixture stands up SLURM from Debian's packages (``slurm-wlm`` 22.05 and
``munge``; ``tools/ensure-slurm.sh`` installs them, ``make test`` calls it):
munged, slurmctld and slurmd on localhost, configured by a minimal
``slurm.conf`` in a temporary folder, without accounting (no slurmdbd), as
on a small lab cluster. It runs as root (slurmd launches the jobs as their
submitter) and the test skips, saying why, when root, the packages or the
executor plugin are missing. Every daemon it started is stopped at the end.

The test runs the small study of ``tests/test_workflow.py`` (two smoke
trainings and chapter 2) once locally and once through
``--profile workflow/profiles/slurm``, and checks that the trainings went
through SLURM (the job ids in Snakemake's log are SLURM jobs that squeue
shows completed, and only those), that the chapter ran on the submitting
node (localrules), and that the patient predictions are byte-identical.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from test_workflow import ARMS, MEMBERS, ROOT, baseline_pages, make_twin, predictions, small_study

pytestmark = pytest.mark.slow

DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sinfo")

#: Where SLURM's commands look for the configuration when SLURM_CONF is not
#: set. The job step plugin of Snakemake (snakemake-executor-plugin-slurm-
#: jobstep 0.6.1) removes every SLURM_* variable but the job's ids before it
#: calls ``srun`` inside the job, SLURM_CONF included; a real cluster has its
#: configuration here (or is configless), so the test puts it here too, for
#: its own duration, and only when there is none.
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
#: First line of the configurations the test writes (one left by a killed run is replaced).
OURS = "# written by pd-study's tests/test_slurm.py for its own duration\n"


def _skip_reason() -> str | None:
    if os.name != "posix" or os.geteuid() != 0:
        return "the SLURM test runs slurmd, which launches jobs as their submitter: it needs root"
    if shutil.which("slurmctld") is None and shutil.which("apt-get"):
        subprocess.run(["bash", str(ROOT / "tools" / "ensure-slurm.sh")], timeout=900)
    missing = [tool for tool in DAEMONS if shutil.which(tool) is None]
    if missing:
        return f"SLURM is not installed (missing {', '.join(missing)}; tools/ensure-slurm.sh installs slurm-wlm munge)"
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        return "snakemake-executor-plugin-slurm is not installed (pip install -e '.[test]')"
    if SYSTEM_CONF.exists() and not SYSTEM_CONF.read_text(errors="replace").startswith(OURS):
        return f"{SYSTEM_CONF} exists: this machine has a SLURM configuration, which the test does not replace"
    return None


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


SLURM_CONF = OURS + """\
ClusterName=pdtest
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={run}/munge.socket
CredType=cred/munge
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
StateSaveLocation={run}/state
SlurmdSpoolDir={run}/spool
SlurmctldPidFile={run}/slurmctld.pid
SlurmdPidFile={run}/slurmd.pid
SlurmctldLogFile={run}/slurmctld.log
SlurmdLogFile={run}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MinJobAge=300
ReturnToService=2
MpiDefault=none
NodeName=pdnode NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes=pdnode Default=YES MaxTime=INFINITE State=UP
"""


@pytest.fixture(scope="module")
def slurm_cluster():
    """Environment variables of a running single-node SLURM cluster (munged, slurmctld, slurmd)."""
    reason = _skip_reason()
    if reason:
        print(f"test_slurm skipped: {reason}")
        pytest.skip(reason)
    run = Path(tempfile.mkdtemp(prefix="pdslurm-", dir="/tmp"))  # short: a Unix socket path has 107 bytes at most
    (run / "state").mkdir()
    (run / "spool").mkdir()
    ctld_port, slurmd_port = _free_ports(2)
    conf = run / "slurm.conf"
    conf.write_text(SLURM_CONF.format(host=socket.gethostname().split(".")[0], run=run, ctld_port=ctld_port,
                                      slurmd_port=slurmd_port, cpus=min(os.cpu_count() or 1, 2)))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    started: list[Path] = []
    SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(conf, SYSTEM_CONF)

    def start(command, pid_file):
        subprocess.run(command, check=True, env=env, timeout=60, capture_output=True)
        started.append(pid_file)

    try:
        subprocess.run(["mungekey", "--create", f"--keyfile={run}/munge.key"], check=True, timeout=60)
        start(["munged", "--force", f"--socket={run}/munge.socket", f"--key-file={run}/munge.key",
               f"--pid-file={run}/munged.pid", f"--log-file={run}/munged.log", f"--seed-file={run}/munged.seed"],
              run / "munged.pid")
        start(["slurmctld", "-f", str(conf), "-i"], run / "slurmctld.pid")
        start(["slurmd", "-f", str(conf), "-N", "pdnode"], run / "slurmd.pid")
        deadline = time.monotonic() + 60
        state = ""
        while time.monotonic() < deadline:
            state = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], env=env, capture_output=True,
                                   text=True, timeout=30).stdout.strip()
            if state == "idle":
                break
            time.sleep(0.5)
        logs = "".join(p.read_text(errors="replace")[-2000:] for p in run.glob("*.log"))
        assert state == "idle", f"the SLURM node did not come up (state {state!r}):\n{logs}"
        yield env
    finally:
        subprocess.run(["scancel", "--user", getpass.getuser()], env=env, timeout=30, capture_output=True)
        subprocess.run(["scontrol", "shutdown"], env=env, timeout=30, capture_output=True)
        pids = [p for p in (_pid(f) for f in started) if p is not None]
        munge = _pid(run / "munged.pid")
        deadline = time.monotonic() + 20
        while any(_alive(p) for p in pids if p != munge) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in pids:  # slurm daemons that did not stop by themselves, then munged
            if _alive(pid):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        leftover = [p for p in pids if _alive(p)]
        for pid in leftover:
            os.kill(pid, signal.SIGKILL)
        SYSTEM_CONF.unlink(missing_ok=True)
        shutil.rmtree(run, ignore_errors=True)
        assert not leftover, f"SLURM daemons {leftover} had to be killed"


def test_smoke_trainings_run_through_slurm_with_identical_predictions(slurm_cluster, tmp_path):
    twin = make_twin(tmp_path / "twin")
    stamps = [str(tmp_path / "local" / "results" / "seed0" / m / "stamp.json") for m in MEMBERS]
    local, _ = small_study(tmp_path / "local", twin, *stamps)  # the reference: the two trainings only
    assert local.returncode == 0, local.stderr[-4000:]

    base = tmp_path / "slurm"
    run, _ = small_study(base, twin, "--profile", str(ROOT / "workflow" / "profiles" / "slurm"),
                         "--slurm-init-seconds-before-status-checks", "2", "--slurm-keep-successful-logs",
                         env=slurm_cluster, timeout=900)
    log = run.stdout + run.stderr
    assert run.returncode == 0, f"snakemake through SLURM failed:\n{log[-6000:]}"

    # The trainings went through SLURM: their job ids are SLURM's, and squeue
    # (no accounting here) lists exactly those as completed.
    job_ids = set(re.findall(r"SLURM jobid (\d+)", log))
    assert len(job_ids) == len(MEMBERS), log[-4000:]
    queue = subprocess.run(["squeue", "--states=all", "--noheader", "--format=%i|%T"], env=slurm_cluster,
                           capture_output=True, text=True, timeout=30, check=True).stdout.split()
    assert {line.split("|")[0]: line.split("|")[1] for line in queue} == dict.fromkeys(job_ids, "COMPLETED")
    slurm_logs = list((base / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert {p.stem for p in slurm_logs} == job_ids  # one SLURM log per job, named by its id
    assert {p.parent.parent.name for p in slurm_logs} == {"rule_train_member"}
    # The chapter ran on this node (localrules): its pages exist, with no SLURM job of their own.
    assert baseline_pages(base / "book" / "runs") == set(ARMS)
    assert (base / "book" / "runs" / "02_baselines.md").is_file()

    assert predictions(base / "results") == predictions(tmp_path / "local" / "results")
