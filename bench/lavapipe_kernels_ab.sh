#!/usr/bin/env bash
# A/B of a kernel change, kernel by kernel: BEFORE (a binary of the parent commit, e.g.
# `git worktree add /tmp/b HEAD~1 && CARGO_TARGET_DIR=/tmp/b-target cargo build --release` in it)
# against NEW, interleaved twice on the same adapter. Each run times every dispatch of one
# AdaHessian step alone (`bench --dispatches`, all four passes) and prints each kernel's time
# summed over its dispatches and passes, then the passes' sums; then both binaries' whole steps,
# Adam and AdaHessian, interleaved twice.
# Usage: BEFORE=/tmp/adahessian-base [NEW=target/release/adahessian] [MODELS="resnet:8 resnet20"]
#        [BATCH=32] bash bench/lavapipe_kernels_ab.sh
set -u
NEW=${NEW:-target/release/adahessian}
BEFORE=${BEFORE:-/tmp/adahessian-base}
MODELS=${MODELS:-resnet:8 resnet20}
BATCH=${BATCH:-32}
first=${MODELS%% *}
date -u; echo "adapter: $($NEW devices 2>/dev/null | grep -m1 -i llvmpipe)"
for round in 1 2; do
  for bin in "$BEFORE" "$NEW"; do
    echo "== $first batch $BATCH, every kernel alone, round $round: $bin"
    "$bin" bench --data random:3x32x32 --samples 64 --model "$first" --batch-size "$BATCH" --optimizers adahessian \
      --steps 1 --reps 1 --warmup 1 --dispatches 2>/dev/null |
      awk '$1 == "tiled" && $NF ~ /^[0-9.]+$/ && !/sum of/ {s[$(NF-1)] += $NF}
           /sum of/ {print}
           END {for (k in s) printf "   %-32s %9.1f\n", k, s[k] | "sort -k2 -nr"}'
  done
done
for m in $MODELS; do
  for round in 1 2; do
    for bin in "$BEFORE" "$NEW"; do
      echo "== $m batch $BATCH, whole steps, round $round: $bin"
      "$bin" bench --data random:3x32x32 --samples 256 --model "$m" --batch-size "$BATCH" \
        --optimizers adam,adahessian --steps 2 --reps 3 --warmup 1 2>&1 | grep -E "^tiled"
    done
  done
done
date -u
