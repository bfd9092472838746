#!/usr/bin/env bash
# A CUDA 13.0 toolkit for building fiq's `cuda` feature on a machine without one, from NVIDIA's PyPI
# wheels (the package registry is the only network fiq's development machines have):
#
#   tools/device/cuda-toolkit.sh DIR        # then: export CUDA_HOME=DIR/nvidia/cu13
#
# candle's CUDA backend needs nvcc (its kernels are compiled to PTX at build time), the CUDA headers
# and CCCL (cuda_fp16.h includes <nv/target>; FAISS's GPU code also wants cuda_profiler_api.h), and
# links cudart, cublas, cublasLt, curand, nvrtc and the driver's libcuda. The wheels have the first
# ones; a machine without a GPU has no libcuda, so a stub with the driver API's names (soname
# libcuda.so.1) satisfies the linker and the real driver library is found at run time. 13.0 matches
# the GPU machines' driver (580, CUDA 13.0): PTX from a newer nvcc would not load there.
set -euo pipefail
dir=${1:?usage: tools/device/cuda-toolkit.sh DIR}
python=${PYTHON:-python3}
mkdir -p "$dir/wheels"
for package in "nvidia-cuda-nvcc>=13.0,<13.1" "nvidia-cuda-runtime>=13.0,<13.1" "nvidia-cuda-crt>=13.0,<13.1" \
  "nvidia-cuda-cccl>=13.0,<13.1" "nvidia-nvvm>=13.0,<13.1" "nvidia-cuda-nvrtc>=13.0,<13.1" \
  "nvidia-cublas>=13.0,<13.1" "nvidia-curand>=10.4,<10.5" "nvidia-cuda-profiler-api>=13.0,<13.1"; do
  "$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux_2_17_x86_64 -d "$dir/wheels" "$package"
done
for wheel in "$dir"/wheels/*.whl; do unzip -q -o "$wheel" -d "$dir"; done
cuda="$dir/nvidia/cu13"
ln -sfn lib "$cuda/lib64"
for name in cublas cublasLt cudart nvrtc; do ln -sf "lib$name.so.13" "$cuda/lib/lib$name.so"; done
ln -sf libcurand.so.10 "$cuda/lib/libcurand.so"
mkdir -p "$cuda/lib/stubs"
# Every driver API function cuda.h declares, under the names its macros give them (cuFoo_v2 ...) and
# the plain ones: extra names are harmless in a stub.
{ gcc -E -P -I"$cuda/include" "$cuda/include/cuda.h"; cat "$cuda/include/cuda.h"; } \
  | grep -oE '\bcu[A-Z][A-Za-z0-9_]*\s*\(' | sed 's/\s*($//' | sort -u \
  | awk '{ print "void " $1 "(void) {}" }' > "$cuda/lib/stubs/libcuda-stub.c"
gcc -shared -fPIC -w -Wl,-soname,libcuda.so.1 -o "$cuda/lib/stubs/libcuda.so" "$cuda/lib/stubs/libcuda-stub.c"
"$cuda/bin/nvcc" --version | tail -2
echo "export CUDA_HOME=$cuda"
