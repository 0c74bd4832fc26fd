#!/usr/bin/env bash
# One prepared run on a borrowed GPU machine (see BENCHMARKS.md): the wgpu step benchmark at two
# sizes and the PyTorch baseline on the same card. Expects the prebuilt bench_step binary in
# .devbin/ and the Vulkan loader .deb in .gl/ (the machine has no package access).
set -u
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
[ -f "$VK_DRIVER_FILES" ] || unset VK_DRIVER_FILES
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv
for args in "64-64-10 32 200 tanh" "784-1024-1024-10 256 100 relu" "784-256-256-10 128 200 relu"; do
  echo "=== wgpu: $args"; ./.devbin/bench_step $args 2>&1 | grep -v XDG
  echo "=== torch: $args"; python3 bench/torch_step.py $args 2>&1
done
