#!/usr/bin/env bash
# The paper profile on one GPU, as-is, in under 8 minutes: step throughput
# (pdlib vs a bare timm loop, B0/B3/B7), KD step cost, peak memory per arm,
# and a two-epoch B7 PD chain whose members must survive a checkpoint round
# trip bit for bit. Writes ONE results file (default gpu_paper_check.json).
#
#   benchmarks/gpu_paper_check.sh [OUT.json] [extra options of benchmarks/gpu_paper_check.py]
#
# Offline by design: without PDLIB_WEIGHTS (a folder from `python -m pdlib
# fetch-weights --profile paper DIR`) it uses random weights in ImageNet
# layout. The PD chain uses data/twin when present, else generates a twin.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python
OUT=${1:-gpu_paper_check.json}
shift || true
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device visible to torch')"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
exec timeout 470 "$PY" benchmarks/gpu_paper_check.py --out "$OUT" --device cuda "$@"
