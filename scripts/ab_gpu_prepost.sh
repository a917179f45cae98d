#!/usr/bin/env bash
# A/B on one machine: benchmarks/gpu_prepost.py (GPU stages at batch 1 around ONNX Runtime outputs,
# no TensorRT) with the code before the GPU stages took a batch (commit ee1d3ea, checked out by
# `git worktree add .wt-old ee1d3ea`) against the working tree, alternating, a fresh process each.
# On the device, after `source .gpu/env.sh`:  bash scripts/ab_gpu_prepost.sh OUT
set -u
out=$1
for round in 1 2; do
  for tree in old new; do
    dir=$PWD
    [ "$tree" = old ] && dir=$PWD/.wt-old
    (cd "$dir" && PYTHONPATH="$dir:$PYTHONPATH" timeout 100 python3 benchmarks/gpu_prepost.py --repeat 100 \
      --json "$out/ab_${tree}_${round}.json" >"$out/ab_${tree}_${round}.txt" 2>&1)
    echo "$tree $round rc=$?"
  done
done
