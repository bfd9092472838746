#!/usr/bin/env bash
# Every GPU check of fiq, in one call on a GPU machine: NVIDIA driver, python3 with torch and
# transformers (their CUDA 13 wheels bring the cuBLAS/cuRAND/NVRTC libraries fiq's `cuda` build loads),
# no Rust toolchain. The binaries come from tools/device/bundle.sh, built on the development machine.
#
#   bash tools/device/check.sh        # runs what was carried (tools/device/bundle.sh makes them):
#                                     # .device/bundle.tar.xz (checks 1-3) or .device/faiss-gpu.tar.xz
#                                     # (check 4); together they exceed the device tool's 64 MiB
#
# 1. parity: `fiq-index embed` on the GPU (f32, f16, bf16) against transformers' embeddings of the
#    fixture inputs, for the committed tiny model and a random-weight ViT-B/32;
# 2. speed: ViT-B/32 images/s and texts/s at batch 256, fiq (candle CUDA) beside PyTorch's CLIPModel on
#    the same GPU in the same call, f16 and f32 (tools/python/bench_encoder.py);
# 3. CPU FAISS end to end with the same binary (tools/device/faiss-check.sh);
# 4. FAISS on the GPU (`build --gpu 0`) with a `faiss-gpu` build, when that bundle was carried.
# Tables and logs also go to $OUT (the device tool brings that folder back). Exit status 1 when a check
# failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/fiq-device-out}
work=/tmp/fiq-device
rm -rf "$work" && mkdir -p "$work" "$out"
found=0
for bundle in .device/bundle.tar.xz .device/faiss-gpu.tar.xz; do
  [ -f "$bundle" ] || continue
  tar -C "$work" -xJf "$bundle" || { echo "FAIL: cannot unpack $bundle"; exit 1; }
  found=1
done
[ $found = 1 ] || { echo "FAIL: no bundle under .device/ (make one with tools/device/bundle.sh)"; exit 1; }
bin="$work/bin"
cuda_libs=$(python3 - <<'PY'
import glob, os, site
dirs = {d for sp in site.getsitepackages() for d in glob.glob(os.path.join(sp, "nvidia", "*", "lib"))}
print(":".join(sorted(dirs)))
PY
)
export LD_LIBRARY_PATH="$work/lib:$cuda_libs:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PYTHONUNBUFFERED=1
status=0
step() { printf '\n== %s\n' "$*"; }

step "machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
echo "cpus: $(nproc)"
python3 -c 'import torch, transformers; print("torch", torch.__version__, "| transformers", transformers.__version__)'
for binary in "$bin"/*; do
  if ldd "$binary" | grep 'not found'; then
    echo "FAIL: libraries missing for $binary (above)"; exit 1
  fi
done

if [ -x "$bin/fiq-index" ]; then
  step "parity: the fixture model (tests/fixtures/clip-tiny) on the GPU"
  for precision in f32 f16 bf16; do
    python3 tools/python/gpu_parity.py --bin "$bin/fiq-index" --model tests/fixtures/clip-tiny \
      --reference tests/fixtures/clip-tiny/expected.json --precision "$precision" || status=1
  done

  step "parity: ViT-B/32 with random weights on the GPU"
  vit="$work/vit-b32"
  python3 tools/python/clip_reference.py full "$vit" --tokenizer tests/fixtures/clip-tiny/tokenizer.json \
    && python3 tools/python/clip_reference.py check "$vit" || { echo "FAIL: making the ViT-B/32 model"; exit 1; }
  for precision in f32 f16; do
    python3 tools/python/gpu_parity.py --bin "$bin/fiq-index" --model "$vit" --reference "$vit/reference.json" --against cpu \
      --precision "$precision" || status=1
  done

  step "speed: ViT-B/32, batch 256, fiq beside PyTorch on the same GPU"
  for precision in f16 f32; do
    python3 tools/python/bench_encoder.py "$vit" --binary "$bin/bench_encoder" --device cuda --precision "$precision" \
      --batches 256 --images 4096 --texts 4096 --threads "$(nproc)" --repeats 2 2>&1 | tee "$out/bench-$precision.md" \
      || status=1
  done

  step "CPU FAISS with the same binary"
  bash tools/device/faiss-check.sh "$bin/fiq-index" || status=1
fi

if [ -x "$bin/fiq-index-faiss-gpu" ]; then
  step "FAISS on the GPU (faiss-gpu build)"
  bash tools/device/faiss-check.sh "$bin/fiq-index-faiss-gpu" "$bin/fiq-index-faiss-gpu" || status=1
fi

step "result"
[ $status = 0 ] && echo "ALL PASSED" || echo "SOME CHECK FAILED"
exit $status
