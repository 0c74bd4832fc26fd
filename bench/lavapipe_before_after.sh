#!/usr/bin/env bash
# The three models of issue 9 at batch 128: the engine before this work (commit de04b9a, built at
# BEFORE, default /tmp/adahessian-base) and this build's naive and tiled kernel sets, back to back.
set -u
NEW=${NEW:-target/release/adahessian}
BEFORE=${BEFORE:-/tmp/adahessian-base}  # git worktree add /tmp/b de04b9a && cargo build --release in it
CNN="input 1x28x28; conv2d(8, k=3, p=1); tanh; avgpool2d(2); conv2d(16, k=3, p=1); tanh; avgpool2d(2); flatten; linear(10)"
run() { # data model steps reps
  echo "== $2 (data $1)"
  echo "-- before (de04b9a)"; "$BEFORE" bench --data "$1" --model "$2" --batch-size 128 --optimizers adam,adahessian --steps "$3" --reps "$4" --warmup 2 2>&1 | grep -E "^(adam|adahessian)"
  echo "-- this build"; $NEW bench --data "$1" --model "$2" --batch-size 128 --optimizers adam,adahessian --steps "$3" --reps "$4" --warmup 2 --kernels naive,tiled 2>&1 | grep -Ev "XDG|^adapter"
}
date -u; echo "adapter: $($NEW devices 2>/dev/null | grep -m1 -i llvmpipe)"
run digits "mlp:64-128-128-10:tanh" 10 5
run mnist10k "mlp:784-256-10:tanh" 5 5
run mnist10k "$CNN" 3 3
echo "== per pass, mlp:64-128-128-10:tanh"
$NEW bench --data digits --model "mlp:64-128-128-10:tanh" --batch-size 128 --optimizers adam --steps 10 --reps 1 --warmup 1 --kernels naive,tiled --passes 2>&1 | grep -Ev "XDG|^adapter|^digits|^kernels  optimizer|^(naive|tiled) +adam"
echo "== matmul"
for n in 256 512; do $NEW bench --matmul $n --kernels naive,tiled --reps 3 2>&1 | grep -Ev "XDG|^adapter"; done
