#!/usr/bin/env bash
# Builds what tools/device/check.sh runs on a GPU machine (which has no Rust toolchain) and packs it,
# with the CPU libraries fiq links that such a machine may lack, into .device/bundle.tar.xz: the device
# tool's working-tree limit is 64 MiB and the stripped binaries and OpenBLAS compress about 4x.
#
#   CUDA_HOME=... tools/device/bundle.sh       # CUDA_HOME: a CUDA 13.0 toolkit (tools/device/cuda-toolkit.sh)
#
# Then, with the device tool: run command "bash tools/device/check.sh", carry [".device"].
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${CUDA_HOME:?set CUDA_HOME to a CUDA 13.0 toolkit; tools/device/cuda-toolkit.sh makes one}"
export PATH="$CUDA_HOME/bin:$PATH"
# No GPU here to ask: Hopper (H100, H200). candle compiles its kernels for this compute capability.
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
export LIBRARY_PATH="$CUDA_HOME/lib:$CUDA_HOME/lib/stubs${LIBRARY_PATH:+:$LIBRARY_PATH}"
cargo build --release --features cuda -p fiq --example bench_encoder
cargo build --release --features cuda -p fiq-tools --bin fiq-index

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib"
cp target/release/fiq-index target/release/examples/bench_encoder "$stage/bin/"
strip "$stage"/bin/*
# The CPU libraries fiq-index needs beyond glibc and libstdc++ (OpenBLAS behind libblas/liblapack).
ldd "$stage/bin/fiq-index" | awk '/=> \// { print $1, $3 }' | while read -r name path; do
  case "$name" in
    libc.so*|libm.so*|libgcc_s.so*|libstdc++.so*|libcuda.so*|libcu*|libnvrtc*) ;;
    *) cp -L "$path" "$stage/lib/$name" ;;
  esac
done
mkdir -p .device
tar -C "$stage" -cJf .device/bundle.tar.xz bin lib
ls -la .device/bundle.tar.xz
tar -tvJf .device/bundle.tar.xz
