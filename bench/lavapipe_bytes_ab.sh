#!/usr/bin/env bash
# A/B of where CIFAR's training images live: the binary before image bytes went to the GPU
# (BEFORE: f32 rows kept on the host, each batch augmented there and uploaded) and this build
# (the bytes on the GPU, decoded, normalised and augmented by the gather), on the same adapter,
# interleaved twice. CIFAR-format files of random bytes stand in for the real ones (the same
# sizes: 50,000 training images). Usage:
#   BEFORE=/tmp/adahessian-base CIFAR=/tmp/cifar bash bench/lavapipe_bytes_ab.sh
# (make /tmp/cifar with: python3 bench/fake_cifar.py /tmp/cifar)
set -u
NEW=${NEW:-target/release/adahessian}
BEFORE=${BEFORE:-/tmp/adahessian-base}
CIFAR=${CIFAR:-/tmp/cifar}
date -u; echo "adapter: $($NEW devices 2>/dev/null | grep -m1 -i llvmpipe)"
# the data path alone: a model that is almost nothing but its input (global average pooling and
# a linear layer), so a step is mostly the gather (or the host copy, augmentation and upload) of
# a batch of 256 images
tiny="input 3x32x32; globalavgpool; flatten; linear(10)"
for round in 1 2; do
  for bin in "$BEFORE" "$NEW"; do
    echo "== data path: '$tiny' batch 256, round $round: $bin"
    "$bin" bench --data "cifar10:$CIFAR" --augment crop4,flip --model "$tiny" --batch-size 256 \
      --optimizers adam --steps 20 --reps 5 --warmup 3 2>&1 | grep -E "^(data:|tiled)"
  done
done
for m in resnet:8 resnet20; do
  for round in 1 2; do
    for bin in "$BEFORE" "$NEW"; do
      echo "== $m batch 32, cifar10 --augment crop4,flip, round $round: $bin"
      /usr/bin/time -f "peak host memory %M KiB, %e s wall" "$bin" bench --data "cifar10:$CIFAR" --augment crop4,flip \
        --model "$m" --batch-size 32 --optimizers adam,adahessian --steps 3 --reps 3 --warmup 1 2>&1 \
        | grep -E "^(data:|tiled|peak)"
    done
  done
done
date -u
