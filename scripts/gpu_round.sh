#!/usr/bin/env bash
# This round's GPU runs on the device machine (an NVIDIA H200), from the repository root after
# `source .gpu/env.sh` (pycuda and notebook wheels; trtemu, the TensorRT API emulator, NOT
# TensorRT, first on PYTHONPATH as `tensorrt`; the shared models and photos):
#   bash scripts/gpu_round.sh tests OUT [PYTEST ARGS]  # GPU/TensorRT tests through trtemu
#   bash scripts/gpu_round.sh record OUT               # trtemu notebook recordings, the seed
#                                                      # script and its fix, the benchmarks
#   bash scripts/gpu_round.sh recordings OUT           # the recordings alone
#   bash scripts/gpu_round.sh batch OUT                # the GPU stages at batch N: per-frame
#                                                      # pre+post, lanes x batch throughput
# Benchmarks time CuPy work around a stand-in engine or ONNX Runtime outputs, never TensorRT.
set -uo pipefail
mode=$1 out=$2
shift 2
mkdir -p "$out"
python3 -m helpers samples >/dev/null
step() { # a step's log comes back as OUT/NAME.txt, and reports/ after every step
  local name=$1 limit=$2
  shift 2
  echo "== $name: $*"
  timeout "$limit" "$@" 2>&1 | tee "$out/$name.txt" | tail -25
  tar czf "$out/reports.tgz" reports
}
case $mode in
tests)
  timeout 420 python3 -m pytest -q -m "gpu or tensorrt" -p no:cacheprovider -o addopts=-ra "$@" 2>&1 \
    | tee "$out/gpu_tests.txt" | tail -30
  ;;
record | recordings)
  [ "$mode" = record ] && step new_gpu_tests 170 python3 -m pytest -q -m "gpu or tensorrt" -p no:cacheprovider -o addopts=-ra \
    tests/test_batch_gpu.py tests/test_batch_trt.py tests/test_examples.py tests/test_readme_snippets.py \
    tests/test_insightface_reference.py tests/test_recorded.py
  step your_script_fixed 90 python3 scripts/your_script_fixed_run.py --model "$SCRFD_MODEL_DIR/scrfd_2.5g.onnx"
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" # notebook kernels import helpers from here
  step notebooks 150 python3 scripts/run_notebooks.py notebooks/02_engine_building.ipynb \
    notebooks/04_binding_allocation.ipynb notebooks/05_execute_v2_vs_v3.ipynb \
    notebooks/08_troubleshooting.ipynb --out reports/trtemu --tag trtemu
  [ "$mode" = recordings ] && exit 0
  step lanes 90 python3 benchmarks/lanes.py --seconds 0.6 --json reports/lanes/lanes.json
  step lanes_limits 60 python3 benchmarks/lanes_limits.py --json reports/lanes/lanes_limits.json
  step batch 90 python3 benchmarks/batch.py --repeat 100 --json reports/batch/h200.json
  step gpu_prepost 120 python3 benchmarks/gpu_prepost.py --repeat 150 --json reports/gpu_prepost.json
  ;;
batch)
  step batch 120 python3 benchmarks/batch.py --repeat 100 --json reports/batch/h200.json
  step batch_throughput 200 python3 benchmarks/batch_throughput.py --seconds 0.6 --json reports/batch/throughput.json
  ;;
*)
  echo "usage: bash scripts/gpu_round.sh tests|record|recordings|batch OUT" >&2
  exit 2
  ;;
esac
