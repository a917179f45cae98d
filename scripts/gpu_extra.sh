#!/usr/bin/env bash
# Prints the pyproject extra for this machine's GPU stack: gpu-cu12 or gpu-cu13, chosen by the
# CUDA major the NVIDIA driver supports (`nvidia-smi` shows it as "CUDA Version: X.Y"), or by
# CUDA_MAJOR=12|13 when set. A CUDA 13 driver (>= 580) also runs the CUDA 12 stack:
# CUDA_MAJOR=12 picks it on purpose.
set -euo pipefail
major=${CUDA_MAJOR:-}
if [ -z "$major" ]; then
  if ! smi=$(nvidia-smi 2>/dev/null); then
    echo "error: nvidia-smi found no NVIDIA driver; install one, or set CUDA_MAJOR=12 or 13" >&2
    exit 1
  fi
  major=$(sed -n 's/.*CUDA Version: *\([0-9][0-9]*\)\..*/\1/p' <<<"$smi" | head -1)
fi
if ! [[ "$major" =~ ^[0-9]+$ ]]; then
  echo "error: nvidia-smi shows no 'CUDA Version' (CUDA_MAJOR='$major'); set CUDA_MAJOR=12 or 13" >&2
  exit 1
elif [ "$major" -ge 13 ]; then
  echo gpu-cu13  # a driver newer than CUDA 13 still runs CUDA 13 builds
elif [ "$major" -eq 12 ]; then
  echo gpu-cu12
else
  echo "error: the driver supports CUDA $major; the GPU stacks need CUDA 12 (driver >= 525) or 13 (>= 580): update the driver" >&2
  exit 1
fi
