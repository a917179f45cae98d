#!/usr/bin/env bash
# This round's GPU runs on the device machine (an NVIDIA H200), from the repository root after
# `source .gpu/env.sh` (pycuda and notebook wheels; trtemu, the TensorRT API emulator, NOT
# TensorRT, first on PYTHONPATH as `tensorrt`; the shared models and photos):
#   bash scripts/gpu_round.sh tests OUT [PYTEST ARGS]  # GPU/TensorRT tests through trtemu
#   bash scripts/gpu_round.sh record OUT               # trtemu notebook recordings, the seed
#                                                      # script and its fix, the benchmarks
# Benchmarks time CuPy work around a stand-in engine or ONNX Runtime outputs, never TensorRT.
set -uo pipefail
mode=$1 out=$2
shift 2
mkdir -p "$out"
python3 -m helpers samples >/dev/null
case $mode in
tests)
  timeout 420 python3 -m pytest -q -m "gpu or tensorrt" -p no:cacheprovider -o addopts=-ra "$@" 2>&1 \
    | tee "$out/gpu_tests.txt" | tail -30
  ;;
record)
  step() { local name=$1 limit=$2; shift 2; echo "== $name: $*"; timeout "$limit" "$@" 2>&1 | tee "$out/$name.txt" | tail -25; }
  step your_script_fixed 90 python3 scripts/your_script_fixed_run.py
  step notebooks 150 python3 scripts/run_notebooks.py notebooks/02_engine_building.ipynb \
    notebooks/04_binding_allocation.ipynb notebooks/05_execute_v2_vs_v3.ipynb \
    notebooks/08_troubleshooting.ipynb --out reports/trtemu --tag trtemu
  step lanes 120 python3 benchmarks/lanes.py --json reports/lanes/lanes.json
  step lanes_limits 90 python3 benchmarks/lanes_limits.py --json reports/lanes/lanes_limits.json
  step batch 120 python3 benchmarks/batch.py --json reports/batch/h200.json
  step gpu_prepost 150 python3 benchmarks/gpu_prepost.py --json reports/gpu_prepost.json
  cp "$out/lanes.txt" reports/lanes/lanes.txt
  cp "$out/lanes_limits.txt" reports/lanes/lanes_limits.txt
  cp "$out/gpu_prepost.txt" reports/gpu_prepost.txt
  tar czf "$out/reports.tgz" reports
  ;;
*)
  echo "usage: bash scripts/gpu_round.sh tests|record OUT" >&2
  exit 2
  ;;
esac
