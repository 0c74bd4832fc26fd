#!/usr/bin/env bash
# ResNets on a CPU adapter beside PyTorch CPU eager on the same machine, in one run: the wgpu
# AdaHessian and Adam steps (train-mode BatchNorm, H z through the batch statistics) of
# resnet:8 and resnet20 on CIFAR-shaped random data at batch 8, 32 and 128 (each layer binds its
# own window of the activation arena, so batches past WebGPU's 128 MiB storage binding run), then
# bench/torch_resnet.py with 2 threads at the same batches. Batch 128 takes about 10 s a step on
# 2 CPU cores: it runs 2 × 2 timed steps instead of 3 × 3.
# Usage: bench/resnet_cpu.sh [LOG]   (needs torch for the PyTorch half; skipped without it)
# BATCHES="32" picks the batches (default 8 32 128); BIN a prebuilt binary (default: builds one).
set -euo pipefail
cd "$(dirname "$0")/.."
log=${1:-bench/results/$(date +%F)-lavapipe-resnet.log}
batches=${BATCHES:-8 32 128}
bin=${BIN:-./target/release/adahessian}
[ -n "${BIN:-}" ] || cargo build --release -q
{
  echo "# $(date -u +%FT%TZ) $(git rev-parse --short HEAD) $(nproc) cores"
  for depth in 8 20; do
    for batch in $batches; do
      reps=3
      [ "$batch" -ge 128 ] && reps=2
      echo "## wgpu resnet:$depth batch $batch"
      # 5/4 of the batch: the 20% test split leaves exactly the batch to train on (before
      # 2026-12-04 this gave --samples $batch and timed batches of 26 and 102 rows).
      "$bin" bench --data random:3x32x32 --samples $((batch * 5 / 4)) --model "resnet:$depth" \
        --batch-size "$batch" --optimizers adam,adahessian --steps "$reps" --reps "$reps" --warmup 1 2>&1 |
        sed -E 's/^random:3x32x32: .*(, batch [0-9]+;)/random:3x32x32: resnet:'"$depth"'\1/' || true
    done
  done
  if python3 -c 'import torch' 2>/dev/null; then
    for depth in 8 20; do
      for batch in $batches; do
        echo "## pytorch resnet$depth batch $batch"
        python3 bench/torch_resnet.py "$depth" "$batch" 10 2
      done
    done
  else
    echo "## pytorch: not installed (pip install torch), skipped"
  fi
} 2>&1 | tee "$log"
