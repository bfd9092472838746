#!/usr/bin/env bash
# Builds what tools/device/check.sh runs on a GPU machine (which has no Rust toolchain) and packs it,
# with the CPU libraries fiq links that such a machine may lack, into .device/: the device tool's
# working-tree limit is 64 MiB (the repository itself is about 24) and the stripped binaries and
# OpenBLAS compress about 4x.
#
#   CUDA_HOME=... tools/device/bundle.sh             # .device/bundle.tar.xz: fiq-index and bench_encoder
#                                                    #   with --features cuda (the encoder checks)
#   CUDA_HOME=... tools/device/bundle.sh faiss-gpu   # .device/faiss-gpu.tar.xz: fiq-index with
#                                                    #   --features faiss-gpu (FAISS's CUDA build: about
#                                                    #   half an hour on 2 cores)
#
# CUDA_HOME: a CUDA 13.0 toolkit (tools/device/cuda-toolkit.sh makes one). The two bundles do not fit
# in one call together (23 and 41 MB; the repository is 23 MiB): carry one by its path, e.g. carry
# [".device/faiss-gpu.tar.xz"], and run "bash tools/device/check.sh".
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${CUDA_HOME:?set CUDA_HOME to a CUDA 13.0 toolkit; tools/device/cuda-toolkit.sh makes one}"
what=${1:-encoder}
export PATH="$CUDA_HOME/bin:$PATH"
# No GPU here to ask: build for Hopper (H100, H200), for candle's kernels and for FAISS's (CMake reads
# CUDAARCHS; CUDA_PATH is where faiss-sys looks for cudart and cublas).
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90} CUDAARCHS=${CUDAARCHS:-90}
export CUDA_PATH="$CUDA_HOME" CUDACXX="$CUDA_HOME/bin/nvcc"
export LIBRARY_PATH="$CUDA_HOME/lib:$CUDA_HOME/lib/stubs${LIBRARY_PATH:+:$LIBRARY_PATH}"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib" .device
case "$what" in
  encoder)
    cargo build --release --features cuda -p fiq --example bench_encoder
    cargo build --release --features cuda -p fiq-tools --bin fiq-index
    cp target/release/fiq-index target/release/examples/bench_encoder "$stage/bin/"
    bundle=.device/bundle.tar.xz ;;
  faiss-gpu)
    cargo build --release --features faiss-gpu -p fiq-tools --bin fiq-index
    cp target/release/fiq-index "$stage/bin/fiq-index-faiss-gpu"
    bundle=.device/faiss-gpu.tar.xz ;;
  *) echo "usage: tools/device/bundle.sh [encoder|faiss-gpu]" >&2; exit 2 ;;
esac
strip "$stage"/bin/*
# The CPU libraries the binary needs beyond glibc and libstdc++ (OpenBLAS behind libblas/liblapack).
ldd "$stage"/bin/fiq-index* | awk '/=> \// { print $1, $3 }' | sort -u | while read -r name path; do
  case "$name" in
    libc.so*|libm.so*|libgcc_s.so*|libstdc++.so*|libcuda.so*|libcu*|libnvrtc*) ;;
    *) cp -L "$path" "$stage/lib/$name" ;;
  esac
done
XZ_OPT=${XZ_OPT:--9e -T2} tar -C "$stage" -cJf "$bundle" bin lib
ls -la "$bundle"
tar -tvJf "$bundle"
