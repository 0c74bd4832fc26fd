#!/usr/bin/env bash
# A newer lavapipe beside the system's, without installing it: fetches Debian 12's backported Mesa
# (25.0.7, the same LLVM 15 as the stock 22.3.6) and the libdrm it needs from bookworm-backports
# into DIR (default /tmp/mesa-bpo), and prints the two variables that make the Vulkan loader of
# one command use it. The system driver, and so CI, stay as they are.
# Usage: eval "$(bash bench/mesa_backports.sh [DIR])"; then e.g. BIN=... bash bench/resnet_cpu.sh LOG
set -euo pipefail
dir=${1:-/tmp/mesa-bpo}
lib=$dir/root/usr/lib/x86_64-linux-gnu
if [ ! -f "$lib/libvulkan_lvp.so" ]; then
  mkdir -p "$dir/lists/partial" "$dir/debs"
  echo "deb http://deb.debian.org/debian bookworm-backports main" > "$dir/sources.list"
  o=(-oDir::Etc::SourceList="$dir/sources.list" -oDir::Etc::SourceParts=/dev/null -oDir::State::Lists="$dir/lists")
  apt-get "${o[@]}" update -qq >&2
  (cd "$dir/debs" && apt-get "${o[@]}" download mesa-vulkan-drivers/bookworm-backports \
    libdrm2/bookworm-backports libdrm-amdgpu1/bookworm-backports >&2)
  for f in "$dir"/debs/*.deb; do dpkg -x "$f" "$dir/root"; done
fi
# the package's manifest names the library bare, so the loader finds it on LD_LIBRARY_PATH
cp "$dir/root/usr/share/vulkan/icd.d/lvp_icd.json" "$dir/lvp_icd.json"
echo "export LD_LIBRARY_PATH=$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} VK_DRIVER_FILES=$dir/lvp_icd.json"
