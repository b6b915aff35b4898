#!/usr/bin/env bash
# The SLURM test (tests/test_slurm.py) stands up a single-node SLURM cluster
# from Debian's packages: munge, slurmctld and slurmd (slurm-wlm). This script
# installs them when missing (a fresh CI container has none) and nothing else:
# it starts no daemon and writes no configuration (the test does both, in a
# temporary folder, and stops every daemon it started). It never fails the
# test command: the SLURM test itself skips with a reason if SLURM could not
# be had (not root, no apt-get, no network).
set -u
need=""
for tool in munged mungekey slurmctld slurmd sbatch squeue scontrol; do
  command -v "$tool" >/dev/null 2>&1 || need="$need $tool"
done
[ -z "$need" ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      slurm-wlm munge >/dev/null) \
    || echo "ensure-slurm: could not install slurm-wlm and munge; the SLURM test will be skipped" >&2
else
  echo "ensure-slurm: missing$need and cannot apt-get install slurm-wlm munge (needs root and apt-get);" \
       "the SLURM test will be skipped" >&2
fi
exit 0
