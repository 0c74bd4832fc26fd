#!/usr/bin/env bash
# Mesa 22's lavapipe recompiles a pipeline at every bind when substituting its uniforms' values
# halves its code (no cache; shaders/common.wgsl `runtime_value`). This counts the LLVM modules the
# driver builds per training step (a uprobe on LLVMModuleCreateWithNameInContext in libLLVM: one
# per pipeline compile) and times the steps, for the binary BEFORE=... and this tree's, on the same
# adapter in one run.
#   BEFORE=/path/to/old/adahessian bash bench/lavapipe_recompile_ab.sh
# Needs root (perf probe) and Mesa's lavapipe; prints a table per binary.
set -euo pipefail
cd "$(dirname "$0")/.."
AFTER=${AFTER:-target/release/adahessian}
BEFORE=${BEFORE:?set BEFORE to the binary to compare against}
LLVM=$(ldconfig -p | sed -n 's/.*libLLVM-1[0-9]\.so\.1 .*=> //p' | head -n 1)
probe=probe_libLLVM:LLVMModuleCreateWithNameInContext
perf probe -q -x "$LLVM" LLVMModuleCreateWithNameInContext 2>/dev/null || true
compiles() { # binary, bench args...: LLVM modules built by the run
  local bin=$1; shift
  perf stat -x, -e "$probe" "$bin" bench "$@" --reps 1 --warmup 0 2>&1 >/dev/null | grep "$probe" | cut -d, -f1 || true
}
configs=(
  "digits|mlp:64-32-10:tanh|tiled"
  "digits|mlp:64-32-10:tanh|shared"
  "digits|input 1x8x8; conv2d(4, k=3, p=1); relu; maxpool2d(2); flatten; linear(10)|tiled"
  "random:3x32x32|resnet:8|tiled"
)
for bin in "$BEFORE" "$AFTER"; do
  echo "== $bin"
  for c in "${configs[@]}"; do
    IFS='|' read -r data model kernels <<<"$c"
    for batch in 8 32; do
      for opt in adam adahessian; do
        args=(--data "$data" --model "$model" --kernels "$kernels" --batch-size "$batch" --optimizers "$opt")
        [[ $data == random:* ]] && args+=(--samples 64)
        a=$(compiles "$bin" "${args[@]}" --steps 2)
        b=$(compiles "$bin" "${args[@]}" --steps 6)
        ms=$("$bin" bench "${args[@]}" --steps 10 --reps 3 --warmup 2 2>/dev/null | awk -v k="$kernels" '$1 == k { print $3 }')
        printf '%-16s %-14s %-7s batch %3d %-10s %5.1f compiles/step %9s ms/step\n' \
          "$data" "${model:0:14}" "$kernels" "$batch" "$opt" "$(echo "($b - $a) / 4" | bc -l)" "$ms"
      done
    done
  done
done
