#!/usr/bin/env bash
# One prepared run on a borrowed GPU machine (see BENCHMARKS.md). Expects prebuilt binaries in
# .devbin/ (bench_step, bench_conv: built here, the machine has no crates.io) and the Vulkan
# loader and GL dispatch .debs in .gl/ (the machine has no package access either).
# Usage: bash bench/device_run.sh [mlp|cnn|all]
set -u
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv
what=${1:-all}
if [ "$what" = mlp ] || [ "$what" = all ]; then
  for args in "64-64-10 32 200 tanh" "784-256-256-10 128 200 relu" "784-1024-1024-10 256 100 relu"; do
    echo "=== wgpu: $args"; ./.devbin/bench_step $args 2>&1 | grep -v XDG
    echo "=== torch: $args"; python3 bench/torch_step.py $args 2>&1
  done
fi
if [ "$what" = cnn ] || [ "$what" = all ]; then
  for args in "32 16 32 14 3 20" "128 32 64 28 3 10" "128 3 32 32 5 10"; do
    echo "=== wgpu conv: $args"; ./.devbin/bench_conv $args 2>&1 | grep -v XDG
  done
  cnn="input 1x28x28; conv2d(32, k=3, p=1); relu; maxpool2d(2); conv2d(64, k=3, p=1); relu; maxpool2d(2); flatten; linear(10)"
  echo "=== wgpu step: MNIST CNN, batch 128"; ./.devbin/bench_step "$cnn" 128 50 2>&1 | grep -v XDG
fi
