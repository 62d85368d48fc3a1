#!/usr/bin/env bash
# ./run.sh itself on a lent GPU, offline, with all-MiniLM-L6-v2's real weights and the real data: auto precision,
# the GPU calibration and plan, the scheduler, interim blends and the submission.
#
#   bench/gpu_run_check.sh prepare DATA     here, with the package registry: writes .carry/ (wheels the device
#                                           image lacks, MiniLM in fp16, DATA's three CSVs; ignored by git)
#   bash bench/gpu_run_check.sh device      on the device (the `run` tool with carry [".carry"]); $OUT gets
#                                           run.log, report.json, report.md and folds.json
#   TINY=1 SOLUTION_NO_VENV=1 PATH=<a venv with the kit>/bin:$PATH bash bench/gpu_run_check.sh device
#                                           the same path on a CPU in a few minutes (one epoch, 2 folds)
#
# The device reaches no registry, so `./run.sh`'s first-run install cannot run there: this script seeds the venv
# (the image's packages, the carried wheels, the kit on a .pth) and run.sh's stamp, then calls ./run.sh as a user would.
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=.carry
MODELS="${MODELS:-minilm-top3-ft,minilm-lora}"

prepare() {
  local data="$1" py="${PY:-.venv/bin/python}"
  mkdir -p "$CARRY/wheels" "$CARRY/data"
  "$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 -d "$CARRY/wheels" \
    "iterative-stratification>=0.1.7" "emoji>=2.10,<3"
  cp "$data"/train.csv "$data"/test.csv "$data"/sample_submission.csv "$CARRY/data/"
  "$py" - "$CARRY/minilm" <<'EOF'
import sys

import torch
from transformers import AutoModel, AutoTokenizer

from solution.models.weights import resolve

src = resolve("sentence-transformers/all-MiniLM-L6-v2")
AutoModel.from_pretrained(src, dtype=torch.float16).save_pretrained(sys.argv[1])
AutoTokenizer.from_pretrained(src).save_pretrained(sys.argv[1])
EOF
  du -sh "$CARRY"
}

device() {
  local out="${OUT:-/tmp/gpu-run-out}" work=/tmp/gpu-run py
  mkdir -p "$out"
  if [ "${SOLUTION_NO_VENV:-0}" = "1" ]; then  # a python that has the kit's packages already (a CPU test)
    py=python3
  else
    [ -x .venv/bin/python ] || python3 -m venv --system-site-packages .venv
    py=.venv/bin/python
    echo "$PWD" > "$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/solution-kit.pth"
  fi
  "$py" -m pip install -q --no-index --no-deps "$CARRY"/wheels/*.whl
  mkdir -p .venv && echo "$(cat setup.cfg pyproject.toml | sha256sum | cut -c1-16) gpu" > .venv/.solution-setup
  export SOLUTION_WEIGHTS="sentence-transformers/all-MiniLM-L6-v2=$PWD/$CARRY/minilm" PYTHONUNBUFFERED=1
  local extra=(--time-budget 20m)
  if [ "${TINY:-0}" = "1" ]; then
    extra=(--time-budget 20m --n-splits 2 --set epochs=1 --set max_train_samples=200)
  fi
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null | tee "$out/run.log" || true
  rm -rf "$work"
  local t0=$SECONDS
  ./run.sh --input "$CARRY/data" --models "$MODELS" --folds-dir "$work/folds" --output "$work/out" "${extra[@]}" \
    2>&1 | tee -a "$out/run.log"
  echo "wall: $((SECONDS - t0)) s" | tee -a "$out/run.log"
  cp "$work/out/blend/report.json" "$work/out/blend/report.md" "$work/folds/folds.json" "$out/"
}

case "${1:-}" in
  prepare) prepare "${2:?DATA: the folder with train.csv, test.csv, sample_submission.csv}" ;;
  device) device ;;
  *) echo "usage: $0 prepare DATA | device" >&2; exit 2 ;;
esac
