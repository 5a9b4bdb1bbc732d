#!/usr/bin/env bash
# bench-rss.sh reports imds-proxy's resident size (VmRSS) serving
# BENCH_MANY tenants (10,000), each on its own 127.x address and with a
# role of its own (mock credentials: no AWS account needed): idle
# BENCH_IDLE seconds (10) after start, then after every tenant was asked
# from its own address four metadata paths and its credentials as an SDK
# asks them (scripts/bench-askall --credentials), then again BENCH_IDLE
# seconds later. BENCH_CREDENTIALS=0 gives the tenants no role and asks
# the metadata paths only. Extra arguments go to imds-proxy.
#
#   scripts/bench-rss.sh
#   BENCH_MANY=1000 scripts/bench-rss.sh --memory-limit 48MiB
set -euo pipefail
many=${BENCH_MANY:-10000}
idle=${BENCH_IDLE:-10}
creds=${BENCH_CREDENTIALS:-1}
cd "$(dirname "$0")/.."
work=$(mktemp -d)
pid=
trap '[[ -n $pid ]] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
go build -o "$work/imds-proxy" ./cmd/imds-proxy
go build -o "$work/bench-askall" ./scripts/bench-askall
{
	echo "tenants:"
	awk -v n="$many" -v creds="$creds" 'BEGIN { for (i = 0; i < n; i++) printf "  - {name: t%d, sources: [\"127.%d.%d.%d\"], limits: {connections: 64}%s}\n", i, 1 + int(i / 65536), int(i / 256) % 256, i % 256, creds == 1 ? sprintf(", credentials: {mock: true, role_name: r%d}", i) : "" }'
} >"$work/many.yaml"
"$work/imds-proxy" --config "$work/many.yaml" --listen 127.0.0.1:0 --admin-listen off --log-format json "$@" >/dev/null 2>"$work/log" &
pid=$!
addr=
for _ in $(seq 100); do
	addr=$(grep -m1 '"listener":"imds"' "$work/log" | grep -oE '127\.0\.0\.1:[0-9]+' | head -n1 || true)
	[[ -n $addr ]] && break
	sleep 0.1
done
[[ -n $addr ]] || { cat "$work/log" >&2; exit 1; }
rss() { awk '/^(VmRSS|RssAnon|RssFile):/ { v[$1] = $2 } END { printf "%.1f MiB (anonymous %.1f, file %.1f)", v["VmRSS:"] / 1024, v["RssAnon:"] / 1024, v["RssFile:"] / 1024 }' "/proc/$pid/status"; }
sleep "$idle"
echo "$many tenants: idle RSS $(rss)"
if [[ $creds == 1 ]]; then
	"$work/bench-askall" --proxy "$addr" --tenants "$many" --credentials
	asked="4 paths and its credentials"
else
	"$work/bench-askall" --proxy "$addr" --tenants "$many"
	asked="4 paths"
fi
echo "$many tenants: RSS after every tenant was asked $asked $(rss)"
sleep "$idle"
echo "$many tenants: RSS $idle s later $(rss)"
