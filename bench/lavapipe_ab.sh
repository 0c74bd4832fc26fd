#!/usr/bin/env bash
# A/B of two builds on the same adapter, alternating runs so that this VM's drift hits both:
# BEFORE (a binary built from an earlier commit, e.g. `git worktree add /tmp/old <rev> &&
# CARGO_TARGET_DIR=/tmp/old-target cargo build --release` in it) against this build, on the CNNs
# and MLPs of issue 9 (AdaHessian and Adam steps, and the per-dispatch profile of this build).
set -u
NEW=${NEW:-target/release/adahessian}
BEFORE=${BEFORE:-/tmp/old-target/release/adahessian}
LABEL=${LABEL:-before}
ROUNDS=${ROUNDS:-3}
TANH_CNN="input 1x28x28; conv2d(8, k=3, p=1); tanh; avgpool2d(2); conv2d(16, k=3, p=1); tanh; avgpool2d(2); flatten; linear(10)"
step() { # label binary data model batch steps ("default": the data set's own model)
  local model=(--model "$4"); [ "$4" = default ] && model=()
  "$2" bench --data "$3" "${model[@]}" --batch-size "$5" --optimizers adam,adahessian --steps "$6" --reps 3 --warmup 2 2>&1 \
    | grep -E "^tiled +(adam|adahessian)" | awk -v who="$1" '{printf "%s %s %s ms; ", who, $2, $3} END {print ""}'
}
date -u; echo "adapter: $($NEW devices 2>/dev/null | grep -m1 -i llvmpipe)"
for row in "mnist10k|default|64|5" "mnist10k|$TANH_CNN|128|3" "digits|mlp:64-128-128-10:tanh|128|10" "mnist10k|mlp:784-256-10:tanh|128|5"; do
  IFS='|' read -r data model batch steps <<< "$row"
  echo "== $data $model batch $batch"
  for _ in $(seq "$ROUNDS"); do
    step "$LABEL" "$BEFORE" "$data" "$model" "$batch" "$steps"
    step "this build" "$NEW" "$data" "$model" "$batch" "$steps"
  done
done
echo "== this build, per dispatch: MNIST CNN (relu, max pooling), batch 64"
$NEW bench --data mnist10k --batch-size 64 --optimizers adahessian --steps 5 --reps 1 --warmup 1 --dispatches 2>&1 | sed -n '/^kernels  pass/,$p'
