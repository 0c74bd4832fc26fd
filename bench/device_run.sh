#!/usr/bin/env bash
# One prepared run on a borrowed GPU machine (see BENCHMARKS.md). Expects prebuilt binaries in
# .devbin/ (adahessian, bench_step, bench_conv, bench_loads: `cargo build --release --bin adahessian --examples`
# here, then copy them; the machine has no crates.io) and the Vulkan loader and GL dispatch .debs
# in .gl/ (the machine has no package access either). Logs go to stdout: redirect them into
# bench/results/<date>-<card>.log.
# Usage: bash bench/device_run.sh [kernels|mlp|cnn|resnet|all|ab]
# `ab` times the ResNets with every binary in .devbin/ab/ (say the parent commit's and this one's,
# each `adahessian` built here: `git worktree add /tmp/b HEAD~1 && (cd /tmp/b && cargo build
# --release)`, copied in under names that sort in order) back to back on the card, round by round,
# then one AdaHessian step of the last of them kernel by kernel: a kernel change measured before
# and after in one run. Carry .devbin/ab and .gl only (the 64 MiB limit holds three binaries).
set -u
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
# the lent machines keep the NVIDIA driver's Vulkan ICD outside the loader's search path
nv_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -f "$nv_icd" ] && ! ls /usr/share/vulkan/icd.d/nvidia* /etc/vulkan/icd.d/nvidia* >/dev/null 2>&1; then
  export VK_DRIVER_FILES=$nv_icd __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
fi
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv
what=${1:-all}
if [ "$what" = kernels ] || [ "$what" = all ]; then
  # naive, register-tiled and workgroup-staged kernels back to back on the same card, the 1024³
  # product against the fp32 peak (which set wins here decides the GPU default: BENCHMARKS.md)
  echo "=== matmul"; ./.devbin/adahessian bench --matmul 1024 --kernels naive,tiled,shared --reps 20 2>&1 | grep -v XDG
  # what a scalar, four scalars and a vec4 storage load cost on this card (the packed conv
  # operands pay a packing pass for vec4 loads: on lavapipe a vec4 costs 0.57x four scalars)
  echo "=== load kinds"; ./.devbin/bench_loads 2>&1 | grep -v XDG
  cnn="input 1x28x28; conv2d(8, k=3, p=1); tanh; avgpool2d(2); conv2d(16, k=3, p=1); tanh; avgpool2d(2); flatten; linear(10)"
  for model in "mlp:64-128-128-10:tanh" "mlp:784-256-10:tanh" "mlp:784-1024-1024-10:relu" "$cnn"; do
    data=mnist10k; case "$model" in mlp:64-*) data=digits;; esac
    echo "=== step: $model"
    ./.devbin/adahessian bench --data $data --model "$model" --batch-size 128 --optimizers adam,adahessian \
      --steps 50 --reps 7 --warmup 10 --kernels naive,tiled,shared --passes 2>&1 | grep -v XDG
  done
  # which kernel of which layer the CNN step's time goes to, with the GPU tuning and with the
  # CPU adapter's (unfused dense forward + tangent, fewer weight-gradient splits) on the same card
  for tuning in discrete cpu; do
    echo "=== dispatches, MNIST CNN, tuned as $tuning"
    ADAHESSIAN_TUNING=$tuning ./.devbin/adahessian bench --data mnist10k --batch-size 128 --optimizers adam,adahessian \
      --steps 20 --reps 3 --warmup 5 --kernels tiled,shared --dispatches 2>&1 | grep -v XDG
  done
fi
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
if [ "$what" = resnet ] || [ "$what" = all ]; then
  # ResNet-20 (and -8) at the paper's batch 256 with the adapter's own limits (the activation
  # arena of ResNet-20 at batch 256 is far above WebGPU's 128 MiB binding), AdaHessian and Adam,
  # then PyTorch-CUDA eager on the same card (train-mode BatchNorm, double backward)
  for depth in 8 20; do
    for batch in 128 256; do
      echo "=== wgpu resnet:$depth batch $batch"
      ADAHESSIAN_LIMITS=adapter ./.devbin/adahessian bench --data random:3x32x32 --samples 512 --model "resnet:$depth" \
        --batch-size $batch --optimizers adam,adahessian --steps 20 --reps 5 --warmup 5 --kernels tiled,shared 2>&1 | grep -v XDG
      echo "=== torch resnet$depth batch $batch"; python3 bench/torch_resnet.py $depth $batch 20 8 cuda 2>&1
    done
  done
  # the paper's recipe end to end for a few steps (random CIFAR-shaped images, augmented and
  # streamed from the host as CIFAR is): its progress line is the time estimate of the full run
  echo "=== the paper's AdaHessian settings on resnet20, batch 256, 40 steps, random 3x32x32"
  ADAHESSIAN_LIMITS=adapter ./.devbin/adahessian train --data random:3x32x32:10 --samples 2048 --model resnet20 \
    --batch-size 256 --augment crop4,flip --lr-schedule step --optimizer "adahessian(lr=0.15, weight_decay=5e-4)" \
    --steps 40 --eval-every 20 --force --out "${OUT:-/tmp}/recipe-run" 2>&1 | grep -v XDG
  # the same on CIFAR-format files (random bytes, the real sizes): the images live on the GPU as
  # bytes and the gather normalises and augments them, against the f32 rows streamed above
  cifar="${OUT:-/tmp}/cifar"
  if python3 bench/fake_cifar.py "$cifar"; then
    for data in "cifar10:$cifar" "random:3x32x32 --samples 2048"; do
      echo "=== resnet20 batch 256, --augment crop4,flip, data $data"
      # shellcheck disable=SC2086 # the second data word-splits into its flags on purpose
      ADAHESSIAN_LIMITS=adapter ./.devbin/adahessian bench --data $data --augment crop4,flip \
        --model resnet20 --batch-size 256 --optimizers adam,adahessian --steps 20 --reps 3 --warmup 5 2>&1 | grep -v XDG
    done
    rm -rf "$cifar"
  fi
  # option-B (1×1 conv + BatchNorm) shortcuts, as the common PyTorch CIFAR ResNets with projections
  echo "=== wgpu resnet:20:16:proj batch 256"
  ADAHESSIAN_LIMITS=adapter ./.devbin/adahessian bench --data random:3x32x32 --samples 512 --model resnet:20:16:proj \
    --batch-size 256 --optimizers adam,adahessian --steps 20 --reps 5 --warmup 5 2>&1 | grep -v XDG
  echo "=== dispatches, resnet20 batch 128"
  ADAHESSIAN_LIMITS=adapter ./.devbin/adahessian bench --data random:3x32x32 --samples 256 --model resnet20 --batch-size 128 \
    --optimizers adahessian --steps 5 --reps 3 --warmup 2 --dispatches 2>&1 | grep -v XDG
fi
if [ "$what" = ab ]; then
  for round in 1 2; do
    for model in resnet:8 resnet20; do
      for batch in 128 256; do
        for bin in .devbin/ab/*; do
          echo "=== round $round, $model batch $batch: $(basename "$bin")"
          ADAHESSIAN_LIMITS=adapter "$bin" bench --data random:3x32x32 --samples 512 --model $model --batch-size $batch \
            --optimizers adam,adahessian --steps 20 --reps 3 --warmup 5 --kernels tiled 2>&1 | grep -E "^tiled|adapter"
        done
      done
    done
  done
  last=$(ls .devbin/ab/* | tail -1)
  echo "=== dispatches, resnet20 batch 128: $(basename "$last")"
  ADAHESSIAN_LIMITS=adapter "$last" bench --data random:3x32x32 --samples 256 --model resnet20 --batch-size 128 \
    --optimizers adahessian --steps 5 --reps 3 --warmup 2 --kernels tiled --dispatches 2>&1 | grep -v XDG
fi
