#!/usr/bin/env bash
# The library's training step and jax-js's, same model, batch and optimizer rules, in the same
# headless Chromium (WebGPU; SwiftShader on a machine without a GPU), one after the other.
# Needs web/build.sh done and `npm ci` in web/. Usage: bash bench/browser_side_by_side.sh [MODEL] [BATCH]
set -eu
cd "$(dirname "$0")/.."
model=${1:-mlp:64-128-128-10:tanh}
batch=${2:-128}
q="model=$model&batch=$batch&optimizers=adam,adahessian&steps=20&warmup=5"
date -u
for page in "jaxjs:$q" "$q&kernels=naive" "$q&kernels=tiled" "$q&kernels=shared"; do
  echo "== ${page}"
  BENCH_QUERY="$page" node web/test/bench.mjs | head -1
done
