#!/usr/bin/env bash
# Where the gateway's memory goes with thousands of pays waiting on a slow Alipay: the bench's
# latency runs (`loadtest bench --only latency`) with the gateway built on the system allocator
# and run under heaptrack, then the heap at its peak split by what holds it, per connection of
# the partner API (each holds one hyper write buffer of exactly 8 KiB, so they count themselves).
#
#   bench/gateway_heap.sh            needs heaptrack (Debian: apt install heaptrack) and zstd
#
# Builds the gateway twice (with `--features system-allocator`, then as shipped again), a few
# minutes each; the report and heaptrack's file stay in a temporary folder it names.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services
command -v heaptrack_print >/dev/null || { echo "error: heaptrack is not installed" >&2; exit 1; }
preload=$(dirname "$(command -v heaptrack)")/../lib/heaptrack
[[ -f $preload/libheaptrack_preload.so ]] || preload=/usr/lib/x86_64-linux-gnu/heaptrack
work=$(mktemp -d /tmp/gateway-heap.XXXXXX)
echo "working in $work" >&2

bin=$(scripts/build)
cargo build --release --locked -p gateway --bin gateway --features system-allocator >&2
cp "$bin/gateway" "$work/gateway-system"
scripts/build >/dev/null # the shipped gateway back in place

# The bench starts the binaries beside its own: a copy of loadtest among links to the rest, and
# a gateway that is the system-allocator build with heaptrack preloaded.
mkdir "$work/bin"
for exe in "$bin"/*; do
  [[ -f $exe && -x $exe ]] && ln -s "$exe" "$work/bin/$(basename "$exe")"
done
rm "$work/bin/loadtest" "$work/bin/gateway"
cp "$bin/loadtest" "$work/bin/loadtest"
cat >"$work/bin/gateway" <<EOF
#!/usr/bin/env bash
pipe=$work/pipe.\$\$
mkfifo "\$pipe"
"$preload/libexec/heaptrack_interpret" <"\$pipe" | zstd -q -c >"$work/heap.\$\$.zst" &
LD_PRELOAD=$preload/libheaptrack_preload.so DUMP_HEAPTRACK_OUTPUT=\$pipe exec "$work/gateway-system" "\$@"
EOF
chmod +x "$work/bin/gateway"

"$work/bin/loadtest" bench --only latency --out "$work/report" --markdown "$work/report.md" >&2
grep -A5 '^| Alipay answers' "$work/report.md"
echo
# The serving gateway's file is the largest (the other is `gateway migrate`).
heap=$(ls -S "$work"/heap.*.zst | head -1)
heaptrack_print -f "$heap" --flamegraph-cost-type peak -F "$work/peak.folded" >/dev/null
python3 - "$work/peak.folded" <<'EOF'
import sys
# What holds memory at the heap's peak, told by the frames of each allocation's stack; the first
# rule a stack matches names it.
RULES = [
    ("hyper: partner API connection, write buffer", ["serve_connection<> (http1.rs)"]),
    ("hyper: partner API connection, read buffer", ["(connection.rs)", "poll_read_from_io"]),
    ("hyper: Alipay connection, request channel", ["channel<> (dispatch.rs)"]),
    ("hyper: Alipay connection, write buffer", ["(client.rs)", "new<> (conn.rs)"]),
    ("hyper: Alipay connection, read buffer", ["try_keep_alive", "poll_read_from_io"]),
    ("hyper-util: a request's future to Alipay", ["request<> (client.rs)"]),
    ("hyper-util: an Alipay connection's task", ["execute<> (exec.rs)"]),
    ("gateway: a request's future", ["(app.rs)", "call<> (util.rs)"]),
    ("gateway: a call's task", ["spawn_call"]),
    ("gateway: a call's boxed phases", ["pin<> (boxed.rs)", "(call.rs)"]),
    ("other tasks (partner API connections')", ["spawn<> (spawn.rs)"]),
]
held = {name: 0 for name, _ in RULES}
other = 0
for line in open(sys.argv[1]):
    stack, _, cost = line.rstrip().rpartition(" ")
    name = next((n for n, frames in RULES if all(f in stack for f in frames)), None)
    if name is None:
        other += int(cost)
    else:
        held[name] += int(cost)
connections = held[RULES[0][0]] / 8192
total = sum(held.values()) + other
print(f"heap at its peak: {total / 2**20:.1f} MiB, {connections:,.0f} partner API connections open")
print(f"{'held by':<45} {'MiB':>7} {'KiB per API connection':>23}")
for name, cost in sorted(held.items(), key=lambda kv: -kv[1]) + [("everything else", other)]:
    print(f"{name:<45} {cost / 2**20:7.1f} {cost / 1024 / connections:23.1f}")
EOF
