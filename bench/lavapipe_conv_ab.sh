#!/usr/bin/env bash
# A/B of a conv kernel change on the CIFAR ResNets: the binary before the change (BEFORE, built
# from the parent commit: git worktree add /tmp/b HEAD~1 && cargo build --release in it) and this
# build, interleaved twice on the same adapter, then the conv kernels' own times (--dispatches)
# of both. Usage: BEFORE=/tmp/adahessian-base bash bench/lavapipe_conv_ab.sh
set -u
NEW=${NEW:-target/release/adahessian}
BEFORE=${BEFORE:-/tmp/adahessian-base}
date -u; echo "adapter: $($NEW devices 2>/dev/null | grep -m1 -i llvmpipe)"
for m in resnet:8 resnet20; do
  for round in 1 2; do
    for bin in "$BEFORE" "$NEW"; do
      echo "== $m batch 32, round $round: $bin"
      "$bin" bench --data random:3x32x32 --samples 256 --model "$m" --batch-size 32 \
        --optimizers adam,adahessian --steps 2 --reps 3 --warmup 1 2>&1 | grep -E "^tiled"
    done
  done
done
for bin in "$BEFORE" "$NEW"; do
  echo "== resnet:8 batch 32, conv kernels alone (ms): $bin"
  "$bin" bench --data random:3x32x32 --samples 64 --model resnet:8 --batch-size 32 --optimizers adahessian \
    --steps 1 --reps 1 --warmup 1 --dispatches 2>&1 | grep -E "conv_|sum of"
done
date -u
