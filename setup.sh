#!/usr/bin/env bash
# One command from a fresh clone: a virtual environment with everything the workbook
# needs on this machine, a model, the sample images, and one real detection run.
#   bash setup.sh            CPU setup (ONNX Runtime); the notebooks run top to bottom
#   GPU=1 bash setup.sh      also pycuda, cuda-python, onnxruntime-gpu and TensorRT (pip)
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ "${GPU:-0}" = 1 ]; then
  .venv/bin/python -m pip install -q -e ".[gpu,notebooks]" pytest ruff mypy pyyaml playwright
else
  .venv/bin/python -m pip install -q -e ".[dev]"
  # Type stubs only: the `tensorrt` they depend on downloads from NVIDIA's own index.
  .venv/bin/python -m pip install -q --no-deps "tensorrt-stubs==10.13.0.35.1"
  .venv/bin/python scripts/fix_trt_stubs.py .typings >/dev/null  # stubs mypy can parse
fi
.venv/bin/python -m ipykernel install --sys-prefix --name python3 >/dev/null
if [ -z "${SCRFD_MODEL_DIR:-}" ] && ! ls data/models/*.onnx >/dev/null 2>&1; then
  .venv/bin/python -m helpers models fetch
fi
.venv/bin/python -m helpers models list
.venv/bin/python -m helpers samples
.venv/bin/python -m helpers detect data/samples/astronaut.png data/samples/crowd48.png \
  --json artifacts/detections.json --annotate artifacts/annotated
echo "done: artifacts/detections.json and artifacts/annotated/; tests: .venv/bin/python -m pytest"
