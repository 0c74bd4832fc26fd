#!/usr/bin/env bash
# Builds the browser demo into web/pkg: the library with its wasm facade (feature "web"), then
# wasm-bindgen's JS glue. Needs the wasm32 target and wasm-bindgen-cli of the version in Cargo.lock.
# Serve it with:  python3 -m http.server --bind 127.0.0.1 8000 --directory web
set -euo pipefail
cd "$(dirname "$0")/.."
cargo rustc --lib --release --no-default-features --features web --target wasm32-unknown-unknown --crate-type cdylib
target_dir=${CARGO_TARGET_DIR:-target}
wasm-bindgen --target web --no-typescript --out-dir web/pkg "$target_dir/wasm32-unknown-unknown/release/adahessian_wgpu.wasm"
ls -l web/pkg/adahessian_wgpu_bg.wasm
