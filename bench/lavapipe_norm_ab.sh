#!/usr/bin/env bash
# A/B of the BatchNorm kernels' index walk (shaders/norm.wgsl: norm_walk instead of norm_at's two
# integer divisions per value): BEFORE (a binary of the parent commit, e.g. `git worktree add
# /tmp/b HEAD~1 && CARGO_TARGET_DIR=/tmp/b-target cargo build --release` in it) against this
# build, interleaved twice on the same adapter. Each run times every dispatch of resnet:8's
# AdaHessian step alone (`bench --dispatches`, batch 32); the norm kernels' lines are printed and
# summed per pass. Usage: BEFORE=/tmp/adahessian-base bash bench/lavapipe_norm_ab.sh
set -u
NEW=${NEW:-target/release/adahessian}
BEFORE=${BEFORE:-/tmp/adahessian-base}
date -u; echo "adapter: $($NEW devices 2>/dev/null | grep -m1 -i llvmpipe)"
for round in 1 2; do
  for bin in "$BEFORE" "$NEW"; do
    echo "== round $round: $bin"
    "$bin" bench --data random:3x32x32 --samples 64 --model resnet:8 --batch-size 32 --optimizers adahessian \
      --steps 1 --reps 1 --warmup 1 --dispatches 2>&1 | grep -E "norm_|sum of" > /tmp/norm_ab.$$
    awk '/norm_/ {s[$2] += $NF; all += $NF} END {for (p in s) printf "   norm kernels in %s: %.1f ms\n", p, s[p]; printf "   norm kernels, all passes: %.1f ms\n", all}' /tmp/norm_ab.$$
    grep "sum of" /tmp/norm_ab.$$
  done
done
rm -f /tmp/norm_ab.$$
date -u
