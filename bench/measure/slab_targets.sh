#!/bin/bash
# bench/measure/slab_targets.sh (issue 15 item 3, slab): the kmem_cache 64 B alloc+free pair
# (slab/batch, 1 thread) and producer/consumer remote frees (slab/remote, 2 threads, remote:50
# and remote:100) against the general allocators. Each allocator runs in a process of its own
# (LD_PRELOAD, as bench/bench_slab.runs; a library that is not installed is skipped); rounds
# interleave the processes, one 100 ms repetition each per round. Prints per workload and
# contender the median ns/object over the rounds, "net" = that row's ns/object minus the noalloc
# row's of the same round (the harness loop's own cost), and the ratios kmem_cache / fastest
# peer, raw and net (and, for remote, mimalloc's ns/object over kmem_cache's); the same for
# kprim_kmem_cache_pcpu (SLAB_PERCPU_MAGAZINES), and its ratio to the per-thread row.
# Bounded: rounds stop starting after 90 s and each process is cut at 20 s (about 70 s on a
# quiet 2-vCPU machine). Run from anywhere: bash bench/measure/slab_targets.sh
# (BIN=... another bench_slab, ROUNDS=N; default 12).
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
BIN=${BIN:-build/release/bench/bench_slab}
[ -x "$BIN" ] || { echo "missing $BIN (build bench_slab first, or give BIN=...)"; exit 1; }
ROUNDS=${ROUNDS:-12}
OUT=$(mktemp -d)
FILTER='^slab/(batch/[^/]+/threads:1/size:64/live:1/|remote/[^/]+/threads:2/size:64/remote:(50|100)/)'
KFILTER='^slab/(batch/(noalloc|kprim_kmem_cache|kprim_kmem_cache_pcpu|malloc_glibc)/threads:1/size:64/live:1/|remote/(noalloc|kprim_kmem_cache|kprim_kmem_cache_pcpu|malloc_glibc)/threads:2/size:64/remote:(50|100)/)'
L=/usr/lib/x86_64-linux-gnu
run() {  # label preload filter round
  [ -z "$2" ] || [ -e "$2" ] || return 0
  timeout 20 env ${2:+LD_PRELOAD=$2} "$BIN" --kprim_malloc="$1" --kprim_threads=1,2 --kprim_latency=off \
    --kprim_trial_ms=100 --benchmark_filter="$3" --benchmark_format=json \
    --benchmark_out="$OUT/$1.$4.json" --benchmark_out_format=json >/dev/null 2>&1
}
echo "slab targets: $(date -u +%FT%TZ), nproc $(nproc), load: $(cut -d' ' -f1-3 /proc/loadavg), $BIN, $ROUNDS rounds"
end=$((SECONDS + 90))
for r in $(seq 1 "$ROUNDS"); do
  [ $SECONDS -ge $end ] && break
  run glibc "" "$KFILTER" "$r"
  run jemalloc $L/libjemalloc.so.2 "$FILTER" "$r"
  run tcmalloc $L/libtcmalloc_minimal.so.4 "$FILTER" "$r"
  run mimalloc $L/libmimalloc.so.2 "$FILTER" "$r"
  run tbbmalloc $L/libtbbmalloc_proxy.so.2 "$FILTER" "$r"
done
/usr/bin/python3 - "$OUT" <<'PY'
import glob, json, os, re, statistics, sys
rows = {}  # (workload, contender) -> {round: ns_per_object}
for f in glob.glob(os.path.join(sys.argv[1], "*.json")):
    rnd = f.rsplit(".", 2)[1]
    try:
        d = json.load(open(f))
    except Exception:
        continue
    for b in d.get("benchmarks", []):
        m = re.match(r"slab/(batch|remote)/([^/]+)/threads:(\d+)/size:64/(live:1|remote:\d+)/", b["name"])
        if not m or "ns_per_object" not in b:
            continue
        wl = m.group(1) + " " + m.group(4) + " threads:" + m.group(3)
        rows.setdefault((wl, m.group(2)), {})[rnd] = b["ns_per_object"]
for wl in sorted({w for w, _ in rows}):
    base = rows.get((wl, "noalloc"), {})
    print(f"== {wl}   (median ns/object over rounds; net = minus noalloc of the same round)")
    med = {}
    for (w, c), v in sorted(rows.items()):
        if w != wl: continue
        raw = statistics.median(v.values())
        net = [x - base[r] for r, x in v.items() if r in base]
        med[c] = (raw, statistics.median(net) if net else float("nan"), len(v))
        print(f"  {c:20s} {raw:8.2f} ns   net {med[c][1]:7.2f} ns   rounds {len(v)}   Mobj/s {1e3/raw:7.1f}")
    peers = {c: x for c, x in med.items() if c.startswith("malloc_")}
    if "kprim_kmem_cache" in med and peers:
        k = med["kprim_kmem_cache"]
        best = min(peers, key=lambda c: peers[c][0])
        bestn = min(peers, key=lambda c: peers[c][1])
        print(f"  kmem_cache / fastest peer: raw {k[0]/peers[best][0]:.2f}x ({best}),"
              f" net {k[1]/peers[bestn][1]:.2f}x ({bestn})")
        if "kprim_kmem_cache_pcpu" in med:
            q = med["kprim_kmem_cache_pcpu"]
            print(f"  kmem_cache per-CPU (SLAB_PERCPU_MAGAZINES) / fastest peer: raw {q[0]/peers[best][0]:.2f}x,"
                  f" net {q[1]/peers[bestn][1]:.2f}x; per-CPU / per-thread raw {q[0]/k[0]:.2f}x")
        if wl.startswith("remote") and "malloc_mimalloc" in peers:
            print(f"  kmem_cache throughput / mimalloc's: {peers['malloc_mimalloc'][0]/k[0]:.2f}x")
PY
rm -rf "$OUT"
