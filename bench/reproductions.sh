#!/usr/bin/env bash
# The two comparisons of issue 21 item 4, on data that ships with the binary (MNIST 10k), as
# real runs anyone can repeat; REPRODUCTIONS.md holds what they gave. Each step prints its
# wall time; the log goes to bench/results/.
#   Li et al. 2018: the loss landscape of a ResNet with and without its shortcuts, after the same
#     training (2-D filter-normalised slices and the |lambda_min/lambda_max| map).
#   PyHessian (Yao et al. 2020): the Hessian's top eigenvalues, trace and spectral density of the
#     same ResNet with and without BatchNorm, in both BatchNorm modes.
# Sized for a CPU adapter (2 cores of llvmpipe: about an hour in all, most of it the two
# non-convexity maps); on a GPU raise the steps, the rows and the grids. With REUSE=1 a run
# already trained in OUT, and an output already computed, is reused.
# Usage: bench/reproductions.sh [DEPTH] [WIDTH] [STEPS] [OUT]   (default 20 4 150 repro)
set -euo pipefail
cd "$(dirname "$0")/.."
depth=${1:-20}
width=${2:-4}
steps=${3:-150}
out=${4:-repro}
log=bench/results/$(date +%F)-reproductions.log
cargo build --release -q
bin=./target/release/adahessian
mkdir -p "$out"
timed() {
  local start=$SECONDS
  echo "\$ $*"
  "$@"
  echo "(took $((SECONDS - start)) s)"
}
# with REUSE=1, a step whose output (the directory after --out or --out-dir) exists is skipped
done_before() {
  [ "${REUSE:-0}" = 1 ] && [ -e "$1" ] && echo "## $1: computed before, reused"
}
{
  echo "# $(date -u +%FT%TZ) $(git rev-parse --short HEAD) $(nproc) cores; resnet:$depth:$width, $steps steps"
  $bin devices | head -2
  # SGD with momentum, the same seed and batches for every variant; without BatchNorm the same
  # network only trains at a fifth of the lr (at 0.05 it sits at the chance loss 2.30)
  for variant in "" ":noshort" ":nobn"; do
    name="resnet${depth}w${width}${variant//:/-}"
    lr=0.05
    [ "$variant" = ":nobn" ] && lr=0.01
    if [ "${REUSE:-0}" = 1 ] && [ -f "$out/$name/final.safetensors" ]; then
      echo "## $out/$name: trained before, reused"
      continue
    fi
    timed $bin train --data mnist10k --model "resnet:$depth:$width$variant" --optimizer sgd --lr "$lr" \
      --momentum 0.9 --batch-size 32 --steps "$steps" --eval-every "$steps" --seed 1 --out "$out/$name" --force
  done
  for variant in "" "-noshort"; do
    run="$out/resnet${depth}w${width}$variant"
    echo "## Li et al.: landscape of $run"
    done_before "$run/landscape/grid.csv" ||
      timed $bin landscape --run "$run" --range -1:1:21 --rows 128 --bn-mode train --out "$run/landscape" --force
    done_before "$run/nonconvexity/grid.csv" ||
      timed $bin landscape --run "$run" --range -1:1:7 --rows 64 --bn-mode train --nonconvexity \
        --nonconvexity-steps 10 --out "$run/nonconvexity" --force
  done
  # Li et al.'s contrast needs depth: at 20 both slices are smooth; at 56 the plain one is not
  for variant in "" ":noshort"; do
    name="resnet56w${width}${variant//:/-}"
    if ! { [ "${REUSE:-0}" = 1 ] && [ -f "$out/$name/final.safetensors" ]; }; then
      timed $bin train --data mnist10k --model "resnet:56:$width$variant" --optimizer sgd --lr 0.05 \
        --momentum 0.9 --batch-size 32 --steps "$steps" --eval-every "$steps" --seed 1 --out "$out/$name" --force
    fi
    echo "## Li et al.: landscape of $out/$name"
    done_before "$out/$name/landscape/grid.csv" ||
      timed $bin landscape --run "$out/$name" --range -1:1:15 --rows 64 --bn-mode train --out "$out/$name/landscape" --force
  done
  for variant in "" "-nobn"; do
    run="$out/resnet${depth}w${width}$variant"
    modes="train eval"
    [ "$variant" = "-nobn" ] && modes=train
    for mode in $modes; do
      echo "## PyHessian: spectrum of $run, BatchNorm $mode mode"
      mode_flag=(--bn-mode "$mode")
      [ "$variant" = "-nobn" ] && mode_flag=()
      done_before "$run/hessian-$mode" ||
        timed $bin hessian --run "$run" --rows 64 "${mode_flag[@]}" --top-k 2 --trace --probes 20 --density \
          --slq-runs 1 --lanczos-steps 30 --out-dir "$run/hessian-$mode" --force --json
    done
  done
} 2>&1 | tee -a "$log"
