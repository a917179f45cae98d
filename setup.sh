#!/usr/bin/env bash
# One command from a fresh clone: a virtual environment with everything the workbook
# needs on this machine, a model, the sample images, and one real detection run.
#   bash setup.sh                           CPU setup (ONNX Runtime); the notebooks run top to bottom
#   SCRFD_MODEL_DIR=DIR bash setup.sh       link DIR's SCRFD .onnx files into data/models/ instead of
#                                           downloading det_500m; later commands find them there
#   GPU=1 bash setup.sh                     the GPU stack for the driver's CUDA major (TensorRT,
#                                           cuda-python, onnxruntime-gpu, CuPy); CUDA_MAJOR=12|13 picks one
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
step() { printf '\n==> %s\n' "$*"; }
# pip's own progress lines (Collecting, Downloading, Installing), without the wall of
# "Requirement already satisfied" a second run prints.
pip_install() { .venv/bin/python -m pip install "$@" 2>&1 | sed -u '/^Requirement already satisfied/d'; }

step "virtual environment in .venv/"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ "${GPU:-0}" = 1 ]; then
  EXTRA=$(bash scripts/gpu_extra.sh)
  step "installing the workbook with its $EXTRA and notebook extras (TensorRT comes from NVIDIA's index; several minutes)"
  pip_install --extra-index-url https://pypi.nvidia.com -e ".[$EXTRA,notebooks]" pytest ruff mypy pyyaml playwright
  if command -v nvcc >/dev/null; then
    step "pycuda, built from source with $(command -v nvcc)"
    pip_install -e ".[pycuda]"
  else
    echo "note: pycuda not installed: PyPI has only its source, which needs the CUDA toolkit (nvcc)." \
      "Install the toolkit and run: .venv/bin/pip install -e '.[pycuda]'; or use conda" \
      "(environment-cu12.yml / environment-cu13.yml take a binary pycuda from conda-forge)."
  fi
else
  step "installing the workbook with its CPU, notebook and developer extras (about a minute)"
  pip_install -e ".[dev]"
  # Type stubs only: the `tensorrt` they depend on downloads from NVIDIA's own index.
  pip_install --no-deps "tensorrt-stubs==10.13.0.35.1"
  .venv/bin/python scripts/fix_trt_stubs.py .typings >/dev/null  # stubs mypy can parse
  # insightface 2.x's own SCRFD, the benchmarks' reference. --no-deps: its opencv-python must not
  # join our opencv-python-headless, and its SCRFD module needs nothing the workbook lacks.
  pip_install --no-deps "insightface==2.1"
fi
step "Jupyter kernel"
.venv/bin/python -m ipykernel install --sys-prefix --name python3 >/dev/null

step "models in data/models/"
if [ -n "${SCRFD_MODEL_DIR:-}" ]; then
  .venv/bin/python -m helpers models link "$SCRFD_MODEL_DIR"
elif ! .venv/bin/python -c "from helpers import models; raise SystemExit(not models.onnx_in(models.LOCAL_DIR))"; then
  .venv/bin/python -m helpers models fetch
fi
unset SCRFD_MODEL_DIR # from here on data/models/ is used, as by every later command
.venv/bin/python -m helpers models list

step "sample images in data/samples/"
.venv/bin/python -m helpers samples
step "one detection run"
.venv/bin/python -m helpers detect data/samples/astronaut.png data/samples/crowd48.png \
  --json artifacts/detections.json --annotate artifacts/annotated
echo
echo "done: artifacts/detections.json and artifacts/annotated/; tests: .venv/bin/python -m pytest"
