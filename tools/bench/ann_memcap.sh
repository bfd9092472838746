#!/usr/bin/env bash
# Serving a compressed IVF index of 1M vectors inside a 1 GiB memory limit (issue 3): runs
# `fiq-index eval-ann` in a cgroup-v1 memory cgroup whose limit counts page cache too, so the mapped
# store rows and lists it touches must fit (the kernel reclaims clean pages as needed).
#
#   sudo tools/bench/ann_memcap.sh FIQ_BIN INDEX [LIMIT_MIB]     (default 1024)
#
# Environment: DATA (default /work/bench-data: queries.npy, fiq-exact.json), NPROBE (default 2,4,8,16).
set -euo pipefail
bin=$1; index=$2; limit_mib=${3:-1024}
DATA=${DATA:-/work/bench-data}; NPROBE=${NPROBE:-2,4,8,16}
cg=/sys/fs/cgroup/memory/fiq-memcap-$$
mkdir "$cg"; trap 'rmdir "$cg" 2>/dev/null || true' EXIT
echo $((limit_mib * 1024 * 1024)) > "$cg/memory.limit_in_bytes"
sync; echo 1 > /proc/sys/vm/drop_caches 2>/dev/null || true   # cold start: nothing cached
sh -c "echo \$\$ > $cg/cgroup.procs; exec \"$bin\" eval-ann \"$index\" --queries \"$DATA/queries.npy\" \
  --nprobe $NPROBE --exact-cache \"$DATA/fiq-exact.json\""
echo "cgroup limit $limit_mib MiB; peak usage (RSS + page cache charged) $(( $(cat "$cg/memory.max_usage_in_bytes") / 1048576 )) MiB; limit hits $(cat "$cg/memory.failcnt")"
